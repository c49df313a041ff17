"""leadflow shared infrastructure (no business logic lives here)."""
