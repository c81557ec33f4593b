"""The client's models match the committed schema.yml, component by component."""

from pathlib import Path

import pytest
import yaml

from luffy_admin_client.models import MODELS

SCHEMA = yaml.safe_load((Path(__file__).resolve().parents[3] / "schema.yml").read_text())
COMPONENTS = SCHEMA["components"]["schemas"]
# A Python float is a double: Pydantic writes a float field as a bare "number".
NUMBER_FORMATS = {"double", "float"}


def _openapi_type(prop: dict):
    """(kind, nullable) of a schema.yml property: a JSON type (with format), an enum's values,
    a component name, or a oneOf of component names; arrays as ("array", item kind)."""
    nullable = bool(prop.get("nullable"))
    if "allOf" in prop:
        prop = prop["allOf"][0]
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        component = COMPONENTS[name]
        if "enum" in component:
            return ("enum", tuple(component["enum"])), nullable
        if "oneOf" in component:
            return ("oneOf", tuple(sorted(_openapi_type(item)[0] for item in component["oneOf"]))), nullable
        return name, nullable
    if prop.get("type") == "array":
        return ("array", _openapi_type(prop["items"])[0]), nullable
    if prop.get("type") == "object":
        return "object", nullable
    if prop.get("type") == "number" and prop.get("format") in NUMBER_FORMATS:
        return ("number", None), nullable
    return (prop["type"], prop.get("format")), nullable


def _pydantic_type(prop: dict, defs: dict):
    """The same (kind, nullable) for a property of a Pydantic model's JSON schema."""
    options = prop.get("anyOf", [prop])
    nullable = any(option.get("type") == "null" for option in options)
    kinds = [_pydantic_kind(option, defs) for option in options if option.get("type") != "null"]
    if len(kinds) > 1:
        return ("oneOf", tuple(sorted(kinds))), nullable
    return kinds[0], nullable


def _pydantic_kind(prop: dict, defs: dict):
    if "$ref" in prop:
        name = prop["$ref"].rsplit("/", 1)[1]
        model = next(model for model in MODELS if model.__name__ == name)
        return model.COMPONENT
    if "enum" in prop:
        return ("enum", tuple(prop["enum"]))
    if "const" in prop:
        return ("enum", (prop["const"],))
    if prop.get("type") == "array":
        return ("array", _pydantic_kind(prop["items"], defs))
    if prop.get("type") == "object":
        return "object"
    return (prop["type"], prop.get("format"))


@pytest.mark.parametrize("model", MODELS, ids=[model.__name__ for model in MODELS])
def test_model_matches_its_schema_component(model):
    """Same field names, types (format, enum values, nullability) and required fields."""
    component = COMPONENTS[model.COMPONENT]
    mode = "validation" if model.COMPONENT.endswith("Request") else "serialization"
    ours = model.model_json_schema(mode=mode)
    defs = ours.get("$defs", {})
    assert list(ours["properties"]) == list(component["properties"])
    required = set(component.get("required", []))
    assert set(ours.get("required", [])) == required
    for name, prop in component["properties"].items():
        kind, nullable = _pydantic_type(ours["properties"][name], defs)
        expected_kind, expected_nullable = _openapi_type(prop)
        assert kind == expected_kind, name
        # An optional field the server may leave out reads as None here: nullable is then the
        # model's way of saying "absent", and only required fields must agree on it.
        assert nullable == expected_nullable or name not in required, name
