"""The token file parser, the token table and the method -> scope table."""
from __future__ import annotations

import pytest

from roiclass.server.security import SCOPES, TokenFileError, TokenTable, bearer_token, scope_for
from roiclass.server.security.scopes import METHOD_SCOPES, OPEN
from roiclass.server.security.tokens import token_digest
from roiclass.v1 import classifier_pb2

TOKEN_A = "aaaaaaaaaaaaaaaa-1"
TOKEN_B = "bbbbbbbbbbbbbbbb-2"


def test_parses_tokens_scopes_comments_and_blank_lines():
    table = TokenTable.from_text(f"# a comment\n\n  {TOKEN_A}  classify \n{TOKEN_B} classify,admin,metrics\n")
    assert len(table) == 2
    assert table.lookup(TOKEN_A).scopes == {"classify"}
    assert table.lookup(TOKEN_B).scopes == {"classify", "admin", "metrics"}
    assert table.lookup("unknown-token-xxxxxxxx") is None
    assert table.lookup(TOKEN_A[:-1]) is None


def test_keeps_only_hashes():
    table = TokenTable.from_text(f"{TOKEN_A} classify\n")
    held = repr(table._entries)
    assert TOKEN_A not in held and TOKEN_A.encode().hex() not in held
    assert table._entries[0][0] == token_digest(TOKEN_A)
    grant = table.lookup(TOKEN_A)
    assert grant.token_id.startswith("token:") and TOKEN_A not in grant.token_id


@pytest.mark.parametrize("text,line,says", [
    (f"{TOKEN_A}\n", 1, "expected '<token> <scope>"),
    (f"# ok\n{TOKEN_A} classify extra\n", 2, "got 3 fields"),
    (f"{TOKEN_A} classify\n{TOKEN_B} clasify\n", 2, "unknown scope 'clasify': allowed classify, admin, metrics"),
    (f"{TOKEN_A} classify,\n", 1, "unknown scope ''"),
    ("short classify\n", 1, "token too short"),
    (f"{TOKEN_A} classify\n\n{TOKEN_A} admin\n", 3, "listed twice"),
])
def test_a_malformed_line_is_named_by_file_and_line(text, line, says):
    with pytest.raises(TokenFileError) as info:
        TokenTable.from_text(text, "tokens.txt")
    message = str(info.value)
    assert message.startswith(f"tokens.txt:{line}: ") and says in message
    assert "\n" not in message
    for token in (TOKEN_A, TOKEN_B):
        assert token not in message


def test_an_empty_file_is_refused():
    with pytest.raises(TokenFileError, match="no tokens"):
        TokenTable.from_text("# nothing\n\n", "tokens.txt")


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(TokenFileError, match="missing.txt: cannot read"):
        TokenTable.from_file(tmp_path / "missing.txt")


@pytest.mark.parametrize("value,token", [
    ("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None),
    ("Bearer ", None), ("", None), (None, None), ("abc", None),
])
def test_bearer_token(value, token):
    assert bearer_token(value) == token


def test_every_rpc_has_its_scope_in_the_one_table():
    from roiclass.inference import grpc_service_pb2

    service = classifier_pb2.DESCRIPTOR.services_by_name["ObjectClassifier"]
    oip = grpc_service_pb2.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    assert set(METHOD_SCOPES) == {m.name for m in (*service.methods, *oip.methods)}
    assert set(METHOD_SCOPES.values()) <= {*SCOPES, OPEN}
    assert {m for m, s in METHOD_SCOPES.items() if s == OPEN} == {"ServerLive", "ServerReady", "ModelReady"}
    assert scope_for("/roiclass.v1.ObjectClassifier/ReloadModels") == "admin"
    assert scope_for("/roiclass.v1.ObjectClassifier/ClassifyObject") == "classify"
    assert scope_for("/roiclass.v1.ObjectClassifier/SomeLaterRpc") == "admin"  # closed until listed


def test_lookup_compares_every_entry_in_constant_time(monkeypatch):
    import hmac

    from roiclass.server.security import tokens as module

    calls = []
    real = hmac.compare_digest

    def counting(a, b):
        calls.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(module.hmac, "compare_digest", counting)
    table = TokenTable.from_text(f"{TOKEN_A} classify\n{TOKEN_B} admin\n")
    assert table.lookup(TOKEN_A).scopes == {"classify"}  # found first, the rest still compared
    assert table.lookup("not-a-known-token-x") is None
    assert calls == [(32, 32)] * 4  # digests of equal length: no early exit on the token's length
