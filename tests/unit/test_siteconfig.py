"""The site config schema: valid itself, accepts defaults and a maximal example, names bad keys."""
from __future__ import annotations

import jsonschema
import pytest
import yaml

from academy.probes import PROJECT_ROOT
from academy.siteconfig import DEFAULTS, build_config, deep_merge, load_config
from academy.validation import ConfigError, load_schema, load_yaml


def walk_schema(node, path="$"):
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            yield path, node
        for key, value in node.items():
            yield from walk_schema(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk_schema(value, f"{path}[{i}]")


@pytest.mark.parametrize("name", ["site", "profiles"])
def test_schema_is_a_valid_schema_with_closed_objects_and_descriptions(name):
    """Is each schema valid Draft 2020-12, with additionalProperties false and a description on every key?"""
    schema = load_schema(name)
    jsonschema.Draft202012Validator.check_schema(schema)
    objects = list(walk_schema(schema))
    assert objects
    for path, node in objects:
        assert node.get("additionalProperties") is False, f"{path} allows unknown keys"
        for key, prop in node["properties"].items():
            assert prop.get("description"), f"{path}.{key} has no description"


def test_defaults_pass_the_schema():
    """Do the built-in defaults validate on their own?"""
    cfg = build_config({}, "defaults")
    assert cfg["backend"] == "local" and cfg["hub"]["port"] == 8000


def test_shipped_config_passes():
    """Does the committed hub/academy.yaml validate?"""
    assert load_config(PROJECT_ROOT / "hub" / "academy.yaml")["auth"]["type"] == "native"


def test_maximal_example_passes_and_sets_every_key():
    """Does the full example validate, and does it exercise every key the schema knows?"""
    data = load_yaml(PROJECT_ROOT / "hub" / "academy.full-example.yaml")
    cfg = build_config(data, "full example")
    assert cfg["auth"]["oidc"]["groups_claim"] == "eduperson_entitlement"
    schema = load_schema("site")

    def missing(schema_node, data_node, path):
        for key, prop in schema_node.get("properties", {}).items():
            if key not in data_node:
                yield f"{path}{key}"
            elif prop.get("type") == "object" and "properties" in prop:
                yield from missing(prop, data_node[key], f"{path}{key}.")

    assert list(missing(schema, data, "")) == []


@pytest.mark.parametrize(
    "site, message",
    [
        ({"hub": {"prot": 8000}}, "hub.prot: unknown key"),
        ({"surprise": True}, "surprise: unknown key"),
        ({"auth": {"oidc": {"client_id": "x", "unknown": 1}}}, "auth.oidc.unknown: unknown key"),
        ({"hub": {"port": "8000"}}, "hub.port: '8000' is not of type 'integer'"),
        ({"culler": {"timeout": 5}}, "culler.timeout: 5 is less than the minimum of 60"),
        ({"backend": "kubernetes"}, "backend: 'kubernetes' is not one of"),
        ({"groups": {"workshop": ["Not A Name"]}}, "groups.workshop[0]"),
        (
            {"auth": {"type": "oidc", "oidc": {"client_id": "x", "client_secret_env": "S",
                                               "authorize_url": "https://a", "token_url": "https://t"}}},
            "auth.oidc.userdata_url: required key is missing",
        ),
        ({"auth": {"type": "oidc"}}, "auth.oidc: required when auth.type is oidc"),
        ({"slurm": {"python_env": "relative/venv"}}, "slurm.python_env"),
    ],
)
def test_bad_values_name_their_key_path(site, message):
    """Does each bad value fail with a message naming the exact key path?"""
    with pytest.raises(ConfigError) as err:
        build_config(site, "site.yaml")
    assert str(err.value).startswith("site.yaml: ")
    assert message in str(err.value)


def test_malformed_yaml_names_file_and_line(tmp_path):
    """Does a YAML syntax error name the file and line?"""
    bad = tmp_path / "academy.yaml"
    bad.write_text("hub:\n  port: 8000\n  ip: [unclosed\n")
    with pytest.raises(ConfigError, match=r"academy.yaml: malformed YAML \(line \d+"):
        load_config(bad)


def test_missing_explicit_config_is_an_error(tmp_path):
    """Is a --config path that does not exist refused rather than silently defaulted?"""
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_deep_merge_keeps_unrelated_defaults():
    """Does setting one nested key keep its siblings' defaults?"""
    merged = deep_merge(DEFAULTS, {"hub": {"port": 9000}})
    assert merged["hub"]["port"] == 9000 and merged["hub"]["ip"] == "127.0.0.1"
    assert DEFAULTS["hub"]["port"] == 8000, "defaults must not be mutated"


def test_relative_paths_resolve_against_project_root():
    """Are relative paths taken from the project root, not the current directory?"""
    cfg = build_config({"hub": {"state_dir": "var/state"}}, "t")
    assert cfg["hub"]["state_dir"] == str(PROJECT_ROOT / "var" / "state")
    assert cfg["profiles_file"] == str(PROJECT_ROOT / "spawner_config" / "profiles.yaml")
    assert yaml.safe_load((PROJECT_ROOT / "hub" / "academy.yaml").read_text())["hub"]["state_dir"] == ".academy"
