"""The WASM plugin host: wasmtime, the plugin ABI v1, per-call limits, host functions and the compile cache.

Nothing here touches Kafka: the ``wasm`` executor feeds it modules from the plugin registry.
"""
