"""The evaluation protocols, one module each, declared in `tf_partfash.protocols`."""
