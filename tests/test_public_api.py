"""The package's public API: a short list of names that all exist; a change to it must be deliberate."""

import attribution

PUBLIC = {
    "MODELS", "AttributionError", "Attributor", "BadRowsError", "ConfigError", "DatabaseNotFoundError", "InputError",
    "IntegrityError", "JourneyOptions", "RunSummary", "SchemaError", "Settings", "StorageError", "TimeRange",
    "build_channel_report", "build_journeys", "get_model", "load_settings", "run",
}  # fmt: skip


def test_the_public_names_are_exactly_the_documented_ones_and_all_exist():
    assert set(attribution.__all__) == PUBLIC and len(attribution.__all__) == len(PUBLIC)
    assert all(hasattr(attribution, name) for name in attribution.__all__)
