"""`dripline accounts login --proxy URL --device …`: what the options become in the API's login
body, and what is refused before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from dripline.account_login import BadOption, parse_device, parse_proxy
from dripline.cli import build_parser


@pytest.mark.parametrize(
    ("url", "proxy"),
    [
        ("socks5://127.0.0.1:1080", {"type": "socks5", "host": "127.0.0.1", "port": 1080}),
        ("socks5h://proxy.example:1080",
         {"type": "socks5", "host": "proxy.example", "port": 1080}),
        ("socks5://user:pa%3Ass@10.0.0.1:9050",
         {"type": "socks5", "host": "10.0.0.1", "port": 9050, "username": "user",
          "password": "pa:ss"}),
        ("http://proxy.example:3128/", {"type": "http", "host": "proxy.example", "port": 3128}),
        ("HTTP://u@proxy.example:8080",
         {"type": "http", "host": "proxy.example", "port": 8080, "username": "u"}),
        ("tg://proxy?server=mt.example&port=443&secret=dd0123456789abcdef0123456789abcdef",
         {"type": "mtproxy", "host": "mt.example", "port": 443,
          "secret": "dd0123456789abcdef0123456789abcdef"}),
        ("https://t.me/proxy?server=1.2.3.4&port=8443&secret=0123456789abcdef0123456789abcdef",
         {"type": "mtproxy", "host": "1.2.3.4", "port": 8443,
          "secret": "0123456789abcdef0123456789abcdef"}),
    ],
)  # fmt: skip
def test_a_proxy_url_becomes_the_apis_proxy(url: str, proxy: dict[str, Any]) -> None:
    assert parse_proxy(url) == proxy


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("https://proxy.example:443", "socks5://…, http://… or tg://proxy"),
        ("mtproxy://proxy.example:443", "socks5://…, http://… or tg://proxy"),
        ("proxy.example:1080", "socks5://…, http://… or tg://proxy"),
        ("tg://proxy?server=mt.example&port=443", "tg://proxy\\?server=HOST"),
        ("tg://proxy?server=mt.example&port=x&secret=00", "not a port number"),
        ("socks5://proxy.example", "a host and a port"),
        ("socks5://:1080", "a host and a port"),
        ("socks5://proxy.example:99999", "port"),
        ("http://proxy.example:8080/path", "no path"),
    ],
)
def test_a_proxy_url_that_cannot_be_used_is_refused(url: str, says: str) -> None:
    with pytest.raises(BadOption, match=says):
        parse_proxy(url)


@pytest.mark.parametrize(
    ("text", "device"),
    [
        ("device_model=MacBook Pro,system_version=macOS 14.5,app_version=5.2.3",
         {"device_model": "MacBook Pro", "system_version": "macOS 14.5", "app_version": "5.2.3"}),
        ("device_model=ThinkPad X1, system_version=Windows 11, app_version=5.9.1 x64, "
         "lang_code=de, system_lang_code=de-DE",
         {"device_model": "ThinkPad X1", "system_version": "Windows 11",
          "app_version": "5.9.1 x64", "lang_code": "de", "system_lang_code": "de-DE"}),
    ],
)  # fmt: skip
def test_a_device_becomes_the_apis_device(text: str, device: dict[str, str]) -> None:
    assert parse_device(text) == device


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("MacBook Pro", "name=value pairs"),
        ("model=MacBook", "name=value pairs"),
        ("device_model=A,device_model=B", "given twice"),
    ],
)
def test_a_device_that_cannot_be_used_is_refused(text: str, says: str) -> None:
    with pytest.raises(BadOption, match=says):
        parse_device(text)


def test_the_command_takes_a_proxy_and_a_device() -> None:
    args = build_parser().parse_args(
        ["accounts", "login", "--proxy", "socks5://h:1", "--device", "device_model=X"]
    )
    assert (args.proxy, args.device) == ("socks5://h:1", "device_model=X")


def test_an_account_logged_in_again_takes_no_proxy_or_device() -> None:
    args = build_parser().parse_args(
        ["accounts", "login", "--key", "k", "--account", "a", "--proxy", "socks5://h:1"]
    )
    with pytest.raises(SystemExit, match="keeps its own proxy and device"):
        args.func(args)
