from pathlib import Path

from hookrelay_cli.local.hosts import read_hosts


def test_hosts_file_lines_comments_and_first_match(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "# local receivers\n127.0.0.1 hooks.slack.com Discord.com  # both\n\n10.0.0.1 hooks.slack.com other.test\n",
        encoding="utf-8",
    )
    assert read_hosts(hosts) == {"hooks.slack.com": "127.0.0.1", "discord.com": "127.0.0.1", "other.test": "10.0.0.1"}
