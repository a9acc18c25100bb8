"""Mirrors ``modules/extra_networks.py`` (A1111 v1.10.1; Forge dfdcbab6 is the same).

``<name:arg:...>`` tags are stripped from the prompt by ``parse_prompt(s)`` (the first prompt of
the batch decides the data), ``activate`` calls every registered network (unmentioned ones with
an empty list) and then ``after_extra_networks_activate``; an exception in a network is shown,
never raised.
"""

from __future__ import annotations

import re
from collections import defaultdict

extra_network_registry = {}
extra_network_aliases = {}
displayed_errors = []


def initialize():
    extra_network_registry.clear()
    extra_network_aliases.clear()


def register_extra_network(extra_network):
    extra_network_registry[extra_network.name] = extra_network


def register_extra_network_alias(extra_network, alias):
    extra_network_aliases[alias] = extra_network


class ExtraNetworkParams:
    def __init__(self, items=None):
        self.items = items or []
        self.positional = []
        self.named = {}
        for item in self.items:
            parts = item.split("=", 2) if isinstance(item, str) else [item]
            if len(parts) == 2:
                self.named[parts[0]] = parts[1]
            else:
                self.positional.append(item)

    def __eq__(self, other):
        return self.items == other.items

    def __repr__(self):
        return f"ExtraNetworkParams({self.items!r})"


class ExtraNetwork:
    def __init__(self, name):
        self.name = name

    def activate(self, p, params_list):
        raise NotImplementedError

    def deactivate(self, p):
        raise NotImplementedError


def lookup_extra_networks(extra_network_data):
    res = {}
    for name, args in list(extra_network_data.items()):
        network = extra_network_registry.get(name) or extra_network_aliases.get(name)
        if network is None:
            continue
        res.setdefault(network, []).extend(args)
    return res


def activate(p, extra_network_data):
    activated = []
    for network, args in lookup_extra_networks(extra_network_data).items():
        try:
            network.activate(p, args)
            activated.append(network)
        except Exception as error:
            displayed_errors.append((network.name, error))
    for network in extra_network_registry.values():
        if network in activated:
            continue
        try:
            network.activate(p, [])
        except Exception as error:
            displayed_errors.append((network.name, error))
    if p.scripts is not None:
        p.scripts.after_extra_networks_activate(p, batch_number=p.iteration, prompts=p.prompts, seeds=p.seeds,
                                                subseeds=p.subseeds, extra_network_data=extra_network_data)


def deactivate(p, extra_network_data):
    data = lookup_extra_networks(extra_network_data)
    for network in list(data) + [n for n in extra_network_registry.values() if n not in data]:
        try:
            network.deactivate(p)
        except Exception as error:
            displayed_errors.append((network.name, error))


re_extra_net = re.compile(r"<(\w+):([^>]+)>")


def parse_prompt(prompt):
    res = defaultdict(list)

    def found(match):
        res[match.group(1)].append(ExtraNetworkParams(items=match.group(2).split(":")))
        return ""

    return re.sub(re_extra_net, found, prompt), res


def parse_prompts(prompts):
    res, extra_data = [], None
    for prompt in prompts:
        updated, parsed = parse_prompt(prompt)
        if extra_data is None:
            extra_data = parsed
        res.append(updated)
    return res, extra_data
