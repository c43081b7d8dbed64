"""The Portfolio aggregate (`aggregate.py`: its state machine, see there), the events it records
(`events.py`) and the state records it keeps of each signal and position (`state.py`)."""
