"""`community-edge households import|export|list` against `community-edge run` (real socket and
mosquitto): the register goes in from a GB18030 file Excel saved, out with a BOM, and a file with
mistakes is refused line by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.cli import main
from gateway.tokens import TokenStore
from tests.agent_process import AgentProcess
from tests.servers import MosquittoServer

REGISTER = (
    "小区,楼栋,楼层,房号,独居,照护等级,居民,家属,设备,网格员编号,网格员姓名\n"
    "cli-c,b1,1,1-101,是,半失能,张桂英:13812345678:1941,李明:儿子:13900001111,sos-1,wang-fang,王芳\n"
    "cli-c,b1,2,2-201,否,自理,赵大爷; 赵大妈:13600000000,,,,\n"
)


def test_the_register_in_and_out_through_the_command_line(
    tmp_path: Path, mosquitto: MosquittoServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with AgentProcess(tmp_path / "agent", mosquitto.url) as agent:
        tokens = TokenStore(tmp_path / "agent" / "tokens.db")
        _, token = tokens.create("property_manager", ["cli-c"], name="物业")
        api = ["--api", agent.url, "--token", token]
        source = tmp_path / "register.csv"
        source.write_bytes(REGISTER.encode("gb18030"))  # what Excel in Chinese saves

        assert main(["households", "import", *api, "--community", "cli-c", str(source)]) == 0
        assert capsys.readouterr().out == "imported 2 households\n"

        assert main(["households", "list", *api]) == 0
        assert capsys.readouterr().out.splitlines() == [
            "cli-c/b1/1-101  张桂英  王芳  独居",
            "cli-c/b1/2-201  赵大爷、赵大妈  -",
        ]

        exported = tmp_path / "out.csv"
        assert main(["households", "export", *api, "-o", str(exported)]) == 0
        data = exported.read_bytes()
        assert data.startswith("\ufeff".encode())
        assert "张桂英:13812345678:1941" in data.decode("utf-8-sig")

        broken = tmp_path / "broken.csv"
        broken.write_text(REGISTER.replace("半失能", "卧床") + "cli-c,b1,3,3-301,也许,,,,\n")
        assert main(["households", "import", *api, "--community", "cli-c", str(broken)]) == 1
        err = capsys.readouterr().err
        assert "422: 2 problem(s): nothing was imported" in err
        assert "line 2 照护等级" in err
        assert "line 4 独居" in err

        missing = main(["households", "import", *api, "--community", "cli-c", "/nonexistent.csv"])
        assert missing == 2
        tokens.close()
