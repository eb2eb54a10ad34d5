import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mesos_common.auth.credentials import Credential, parse_credential, parse_credentials
from mesos_common.auth.jsonflag import AuthConfigError
from mesos_common.auth.load import load_credential, load_credentials


def test_master_credentials_json_and_check():
    creds = parse_credentials(json.dumps({"credentials": [
        {"principal": "ops", "secret": "s3cret"}, {"principal": "fw", "secret": "x"}]}))
    assert creds.check("ops", "s3cret") and creds.check("fw", "x")
    assert not creds.check("ops", "x") and not creds.check("nobody", "s3cret")
    assert "ops" in creds and len(creds) == 2
    assert "s3cret" not in repr(creds)


def test_text_form_and_agent_credential(tmp_path):
    f = tmp_path / "creds"
    f.write_text("a sa\nb sb\n")
    assert load_credentials(str(f)).check("b", "sb")
    assert load_credentials(f"file://{f}").check("a", "sa")
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"principal": "agent", "secret": "pw"}))
    assert load_credential(str(one)) == Credential("agent", "pw")
    assert parse_credential("agent pw") == Credential("agent", "pw")
    assert "pw" not in repr(load_credential(str(one)))


@pytest.mark.parametrize("text, why", [
    ('{"credentials": [{"principal": "a"}]}', "secret"),
    ('{"credentials": [{"principal": "a", "secret": "1"}, {"principal": "a", "secret": "2"}]}',
     "twice"),
    ('{"credentials": []}', "no principal"),
    ('{"creds": []}', "expected"),
    ('{"credentials": [{"principal": "a", "secret": "s", "x": 1}]}', "unknown"),
    ("{not json", "JSON"),
])
def test_bad_documents_are_clear(text, why):
    with pytest.raises(AuthConfigError, match=why):
        parse_credentials(text)


def test_missing_file_is_clear(tmp_path):
    with pytest.raises(AuthConfigError, match="cannot read"):
        load_credentials(str(tmp_path / "nope"))


@given(st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and " " not in s),
       st.text(min_size=1, max_size=40))
def test_errors_never_echo_secrets(principal, secret):
    doc = json.dumps({"credentials": [{"principal": principal, "secret": secret, "bad": 1}]})
    with pytest.raises(AuthConfigError) as e:
        parse_credentials(doc)
    if len(secret) > 3 and secret not in principal and secret not in "bad unknown field(s)":
        assert secret not in str(e.value)


@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8),
                       min_size=1, max_size=5), st.text(max_size=8), st.text(max_size=8))
def test_check_is_exact(table, principal, secret):
    creds = parse_credentials(json.dumps({"credentials": [
        {"principal": p, "secret": s} for p, s in table.items()]}))
    assert creds.check(principal, secret) == (table.get(principal) == secret)
