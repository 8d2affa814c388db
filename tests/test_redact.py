from src.redact import redact


def test_redact_hides_passwords():
    assert redact("postgresql://lab:s3cret@db:5432/optuna") == "postgresql://lab:***@db:5432/optuna"
    assert redact("http://u:p@h/x and sqlite:///a.db") == "http://u:***@h/x and sqlite:///a.db"
