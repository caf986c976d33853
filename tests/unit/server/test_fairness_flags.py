"""`roiclass serve` fair-sharing and per-connection flags -> ServerConfig."""
from __future__ import annotations

import pytest

from roiclass.server.cli import build_parser, config_from_args


def _config(*argv: str):
    parser = build_parser()
    return config_from_args(parser.parse_args(list(argv)), parser)


def test_defaults():
    config = _config()
    assert config.engine.max_inflight_rois_per_client == 0  # no cap
    c = config.connections
    assert (c.max_concurrent_streams, c.keepalive_time_s, c.keepalive_timeout_s) == (128, 60.0, 20.0)
    assert (c.min_client_ping_interval_s, c.permit_keepalive_without_calls) == (10.0, False)
    assert (c.max_connection_age_s, c.max_connection_age_grace_s) == (0.0, 30.0)


def test_flags_reach_the_config():
    config = _config("--max-inflight-rois-per-client", "4096", "--max-concurrent-streams", "16",
                     "--keepalive-time", "30", "--keepalive-timeout", "5",
                     "--keepalive-min-client-interval", "20", "--keepalive-permit-without-calls",
                     "--max-connection-age", "600", "--max-connection-age-grace", "45")
    assert config.engine.max_inflight_rois_per_client == 4096
    c = config.connections
    assert (c.max_concurrent_streams, c.keepalive_time_s, c.keepalive_timeout_s) == (16, 30.0, 5.0)
    assert (c.min_client_ping_interval_s, c.permit_keepalive_without_calls) == (20.0, True)
    assert (c.max_connection_age_s, c.max_connection_age_grace_s) == (600.0, 45.0)


@pytest.mark.parametrize("argv, words", [
    (["--max-inflight-rois-per-client", "-1"], "--max-inflight-rois-per-client must be >= 0"),
    (["--max-concurrent-streams", "-1"], "--max-concurrent-streams must be >= 0"),
    (["--keepalive-time", "0"], "--keepalive-time must be > 0"),
    (["--keepalive-timeout", "-2"], "--keepalive-timeout must be > 0"),
    (["--keepalive-min-client-interval", "-1"], "--keepalive-min-client-interval must be >= 0"),
    (["--max-connection-age", "-5"], "--max-connection-age must be >= 0"),
    (["--max-connection-age-grace", "-1"], "--max-connection-age-grace must be >= 0"),
])
def test_bad_values_are_refused_naming_the_flag(argv, words, capsys):
    with pytest.raises(SystemExit):
        _config(*argv)
    assert words in capsys.readouterr().err
