"""Everything Kafka: settings, the topic catalog, the Faust app, producers and readers, the broker launcher."""
