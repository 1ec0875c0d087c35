"""Text formats shared by text-to-text and prompted models: the template reader (``reader``) and the parser of generated text (``parse``)."""
