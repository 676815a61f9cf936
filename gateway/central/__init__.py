"""Central mode: one alert API over PostgreSQL (or SQLite) that many gateways post alert events to."""
