"""Notification channels: routes, messages, group robots (WeCom, DingTalk) and the delivery log."""
