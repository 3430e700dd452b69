"""Unit tests of the depersonalise service: the stage, the engine that applies a protocol, and
the risk gate. The transforms' own tests are in tests/unit/protocols (the transforms live in
services/protocols/transforms)."""
