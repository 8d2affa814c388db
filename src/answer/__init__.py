"""The answer of a sweep: estimates, verdicts, the text and pictures of the report (src/answer)."""
