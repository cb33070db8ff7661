"""Necks: feature pyramids built on a backbone's multi-scale outputs (FPN variants of the models)."""
