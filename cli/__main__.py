from report2label.cli.main import cli

cli(prog_name="r2l")
