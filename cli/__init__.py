"""The `lambdaflow` command: a thin argparse front end over the library."""
