"""The MQTT side: embedded brokers, broker URLs and clients, the transport that publishes device
events, the engine's intake and outbox, the journal and sequencer behind ``pmsim rules serve``, and
``pmsim watch``."""
