"""The gateway's URI for an instance's resource: ``mcp-embed+gateway://<prefix>/<the URI, verbatim>``."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from mcp_embed.gateway.naming import SCHEME, gateway_name, gateway_uri, split_gateway_uri

ODD = [
    "app://scene/current",
    "app://scene/current?view=top&lod=2",
    "app://scene/current#selection",
    "app://scene/current?q=a%20b%2Fc#frag%23x",
    "app://shot/100%/done",  # a bare percent sign: kept, never decoded
    "app://scène/naïve/日本",
    "file:///C:/Users/me/scene%20one.ma",
    "urn:isbn:0451450523",
    "app://shots/{name}{?lod,view}",  # a template's expressions
    "mcp-embed+gateway://maya-1/app://scene/current",  # already a gateway's (a gateway behind one)
    "mcp-embed+gateway://",
    "",
]


@pytest.mark.parametrize("original", ODD)
def test_every_uri_round_trips_exactly(original: str) -> None:
    mapped = gateway_uri("maya-2", original)
    assert mapped == f"mcp-embed+gateway://maya-2/{original}"
    assert split_gateway_uri(mapped) == ("maya-2", original)


def test_a_mapped_uri_parses_as_a_uri_whose_authority_is_the_prefix() -> None:
    parts = urlsplit(gateway_uri("blender-1", "app://scene/current?view=top#sel"))
    assert (parts.scheme, parts.netloc) == (SCHEME, "blender-1")
    assert (parts.path, parts.query, parts.fragment) == ("/app://scene/current", "view=top", "sel")


def test_mapping_twice_unwraps_one_layer_at_a_time() -> None:
    inner = gateway_uri("maya-1", "app://scene/current")
    outer = gateway_uri("site-2", inner)
    assert split_gateway_uri(outer) == ("site-2", inner)
    assert split_gateway_uri(inner) == ("maya-1", "app://scene/current")


@pytest.mark.parametrize(
    "uri",
    [
        "app://scene/current",
        "mcp-embed+gateway:/maya-1/app://x",
        "mcp-embed+gateway://maya-1",  # no slash after the prefix: no original URI
        "mcp-embed+gateway:///app://x",  # no prefix
    ],
)
def test_other_uris_are_not_the_gateways(uri: str) -> None:
    assert split_gateway_uri(uri) is None


def test_the_scheme_is_case_insensitive_the_rest_is_kept_as_it_is() -> None:
    assert split_gateway_uri("MCP-Embed+Gateway://maya-1/APP://X") == ("maya-1", "APP://X")


def test_prompt_names_are_prefixed_and_bounded_like_tool_names() -> None:
    assert gateway_name("maya-1", "review") == "maya-1__review"
    assert gateway_name("maya-1", "r" * 120) == "maya-1__" + "r" * 120  # 128 characters
    assert gateway_name("maya-1", "r" * 121) is None
