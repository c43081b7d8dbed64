"""All Kite code: the `kiteconnect` client adapter (the `Broker` port), the live-data proxy and the paper
broker, and the agent that runs between TraderTape and Kite on the user's machine, with its CLI."""
