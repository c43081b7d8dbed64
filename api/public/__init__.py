"""The API's response models (`*Public`): what each route answers, for the OpenAPI document and the check that
answers match it (tests/integration/test_schemathesis.py). A model mirrors the JSON a route already built --
same keys, same JSON types: numbers the code makes as Python ints stay integers (`Number` where a value may be
either), absent keys stay absent (`exclude_unset` where a key is only sometimes present), and `extra="allow"`
only where a payload is genuinely open (Kite's own shapes, an event's data, a strategy's parameters)."""
