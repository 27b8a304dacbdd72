"""The execution role of functions created without ``--role``: reused, or created once.

The role (`ROLE_NAME`) trusts lambda.amazonaws.com and holds exactly three policies: AWS's
managed AWSLambdaBasicExecutionRole (write logs to CloudWatch), an inline policy with the S3
object access lambdaflow's workers use — read inputs and spilled arguments, write results,
spills and sorted runs (multipart included), list and delete under a prefix — and an inline
policy letting a worker invoke (and read the configuration of) the functions lambdaflow manages,
which is how a Ray-style task starts nested tasks on Lambda: its worker invokes its own
function. One role serves every function created without ``--role``, so that statement names
them by their ``lambdaflow:managed`` tag, not by ARN. Buckets are not known at deploy time, so
the S3 statement covers every bucket; pass ``--role`` to use a role scoped to yours.

IAM is eventually consistent: a role created a moment ago can be refused by Lambda ("cannot be
assumed"); `functions.create` retries that for a while.
"""

from __future__ import annotations

import json

ROLE_NAME = "lambdaflow-worker"
BASIC_EXECUTION_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
S3_POLICY_NAME = "lambdaflow-s3-objects"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
S3_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject",
                    "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
         "Resource": "arn:aws:s3:::*/*"},
        {"Effect": "Allow", "Action": ["s3:ListBucket"], "Resource": "arn:aws:s3:::*"},
    ],
}
INVOKE_POLICY_NAME = "lambdaflow-invoke-self"
INVOKE_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow",
         "Action": ["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
         "Resource": "arn:aws:lambda:*:*:function:*",
         "Condition": {"StringEquals": {"aws:ResourceTag/lambdaflow:managed": "true"}}},
    ],
}


def ensure_role(client=None) -> tuple[str, bool]:
    """Return the ARN of lambdaflow's role and whether it was created just now."""
    import boto3

    iam = client or boto3.client("iam")
    try:
        arn = iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        pass
    else:
        _ensure_invoke_policy(iam)  # roles made before nested tasks existed lack it
        return arn, False
    try:
        arn = iam.create_role(
            RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
            Description="Execution role of lambdaflow workers (created by lambdaflow create)",
            Tags=[{"Key": "lambdaflow:managed", "Value": "true"}])["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        # Another `lambdaflow create` won the race; its role is the one to use.
        return iam.get_role(RoleName=ROLE_NAME)["Role"]["Arn"], False
    iam.attach_role_policy(RoleName=ROLE_NAME, PolicyArn=BASIC_EXECUTION_POLICY)
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=S3_POLICY_NAME,
                        PolicyDocument=json.dumps(S3_POLICY))
    iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=INVOKE_POLICY_NAME,
                        PolicyDocument=json.dumps(INVOKE_POLICY))
    return arn, True


def _ensure_invoke_policy(iam) -> None:
    try:
        iam.get_role_policy(RoleName=ROLE_NAME, PolicyName=INVOKE_POLICY_NAME)
    except iam.exceptions.NoSuchEntityException:
        iam.put_role_policy(RoleName=ROLE_NAME, PolicyName=INVOKE_POLICY_NAME,
                            PolicyDocument=json.dumps(INVOKE_POLICY))
