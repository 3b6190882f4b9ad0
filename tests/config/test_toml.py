"""The Table reader: keys declared with expect(), unknown ones named with their close match."""

import pytest

from nas.config import Table
from nas.errors import ConfigError


def test_expect_names_the_first_unknown_key_with_a_close_match():
    with pytest.raises(ConfigError, match=r"^b.toml: budget: unknown key max_param; did you mean max_params\?$"):
        Table("b.toml", "budget", {"max_epochs": 3, "max_param": 5}).expect(("max_params", "max_epochs"))


def test_without_a_close_match_the_valid_keys_are_listed():
    with pytest.raises(ConfigError, match=r"^b.toml: unknown key zzz; valid keys here: data, name$"):
        Table("b.toml", "", {"zzz": 1}).expect(("name", "data"))
    with pytest.raises(ConfigError, match=r"^s.toml: factors: unknown factor zzz; valid factors here: depth$"):
        Table("s.toml", "factors", {"zzz": [1]}).expect(("depth",), what="factor")


def test_unknown_keys_come_before_missing_ones():
    t = Table("b.toml", "budget", {"max_param": 5})
    with pytest.raises(ConfigError, match="unknown key max_param"):
        t.expect(("max_params",))


def test_a_known_key_that_is_not_read_does_not_apply():
    t = Table("b.toml", "data", {"dataset": "digits", "layout": "NHW"}).expect(("dataset", "layout"))
    assert t.string("dataset") == "digits"
    with pytest.raises(ConfigError, match=r"^b.toml: data.layout: does not apply here; the keys used here: dataset$"):
        t.done()


def test_reading_an_undeclared_key_is_a_bug_not_a_user_error():
    t = Table("b.toml", "data", {"dataset": "digits"}).expect(("dataset",))
    with pytest.raises(RuntimeError, match="data.seed is read but missing from the keys given to expect"):
        t.integer("seed", default=0)
