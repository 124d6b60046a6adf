"""API conventions shared by every app: one error shape, cursor pagination, strict input, schema defaults.

Every error response, whatever raised it, has the body::

    {"code": "validation_error", "message": "Invalid input.", "fields": {"name": ["This field is required."]}}

`fields` is empty for errors that are not about particular input fields.
"""
