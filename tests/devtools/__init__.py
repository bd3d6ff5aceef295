"""Tests of the dev and test tooling (devtools/)."""
