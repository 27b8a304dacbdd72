"""The code that runs inside a worker: `lambdaflow.agent.handler.handler(event, context)`.

It imports only the standard library and cloudpickle (dill when a task asks for it); spilled
payloads pull in `lambdaflow.storage` (and boto3 for s3:// URLs) lazily.
"""

#: The ``Handler`` of a function that runs this agent: `lambdaflow create` deploys it, and the
#: aws backend refuses a function whose handler is another.
HANDLER = "lambdaflow.agent.handler.handler"
