"""Deterministic online-shop data generator for MongoDB and Kafka (see ``millpond generate``)."""

from millpond.generator.model import GeneratorConfig
from millpond.generator.run import GenerationResult, generate, generate_shop

__all__ = ["GenerationResult", "GeneratorConfig", "generate", "generate_shop"]
