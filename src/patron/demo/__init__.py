"""Demo merchant: a deterministic generator of realistic import files (no Django needed).

>>> from patron.demo import generate_demo
>>> manifest = generate_demo(out_dir=Path("demo"), customers=2_000)  # doctest: +SKIP
"""

from patron.demo.generator import STEPS, DemoManifest, generate_demo

__all__ = ["STEPS", "DemoManifest", "generate_demo"]
