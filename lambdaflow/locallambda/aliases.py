"""Function aliases: a name pointing at a version (or $LATEST), maybe splitting traffic with a
second version, as Lambda's CreateAlias/UpdateAlias define them.

Validation follows botocore's lambda model and Lambda's recorded answers: alias names are
``[a-zA-Z0-9-_]`` and not all digits (those are versions); FunctionVersion is ``$LATEST`` or a
number; AdditionalVersionWeights has at most one entry, a published version other than the
primary, weighted from 0 to 1, and only when the primary is not ``$LATEST``.
"""

from __future__ import annotations

import random
import re
import uuid
from dataclasses import dataclass, field

from lambdaflow.locallambda.apierror import invalid, validation_error

ALIAS_NAME = re.compile(r"^(?!\d+$)[a-zA-Z0-9_-]{1,128}$")
_VERSION = re.compile(r"^(\$LATEST|\d{1,1024})$")


@dataclass
class Alias:
    name: str
    function_version: str
    description: str = ""
    weights: dict[str, float] = field(default_factory=dict)   # AdditionalVersionWeights
    revision: str = field(default_factory=lambda: str(uuid.uuid4()))

    def versions(self) -> set[str]:
        """Every version this alias may run."""
        return {self.function_version, *self.weights}

    def pick(self) -> str:
        """The version one invocation runs: the additional version with its weight's
        probability, else the primary (Lambda's weighted alias routing)."""
        for version, weight in self.weights.items():
            if random.random() < weight:
                return version
        return self.function_version

    def document(self, function_arn: str) -> dict:
        doc = {"AliasArn": f"{function_arn}:{self.name}", "Name": self.name,
               "FunctionVersion": self.function_version, "Description": self.description,
               "RevisionId": self.revision}
        if self.weights:
            doc["RoutingConfig"] = {"AdditionalVersionWeights": dict(self.weights)}
        return doc


def validate_name(name: object) -> str:
    if not isinstance(name, str) or not ALIAS_NAME.match(name):
        raise validation_error(name, "name", "Member must satisfy regular expression "
                               "pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)")
    return name


def validate_version(version: object) -> str:
    if not isinstance(version, str) or not _VERSION.match(version):
        raise validation_error(version, "functionVersion", "Member must satisfy regular "
                               "expression pattern: (\\$LATEST|[0-9]+)")
    return version


def validate_description(description: object) -> str:
    if not isinstance(description, str) or len(description) > 256:
        raise invalid("Description must be a string of at most 256 characters")
    return description


def validate_routing(routing: object, primary: str) -> dict[str, float]:
    """AdditionalVersionWeights of a RoutingConfig, checked against the primary version
    (whether each named version exists is the store's to check)."""
    if routing is None:
        return {}
    if not isinstance(routing, dict):
        raise invalid("RoutingConfig must be {'AdditionalVersionWeights': {VERSION: weight}}")
    weights = routing.get("AdditionalVersionWeights") or {}
    if not isinstance(weights, dict):
        raise invalid("AdditionalVersionWeights must map a version to a weight")
    if len(weights) > 1:
        raise invalid("Number of items in AdditionalVersionWeights cannot be greater than 1")
    for version, weight in weights.items():
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) \
                or not 0.0 <= weight <= 1.0:
            raise validation_error(
                f"{{{version}={weight}}}", "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or "
                "equal to 1.0, Member must have value greater than or equal to 0.0, Member "
                "must not be null]")
        if not (isinstance(version, str) and version.isdigit()):
            raise validation_error(
                f"{{{version}={weight}}}", "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must satisfy regular expression "
                "pattern: [0-9]+]")
        if version == primary:
            raise invalid(f"Invalid function version {version}. Function version {version} "
                          f"is already included in routing configuration.")
        if primary == "$LATEST":
            raise invalid("$LATEST is not supported for an alias pointing to more than 1 "
                          "version")
    return {version: float(weight) for version, weight in weights.items()}
