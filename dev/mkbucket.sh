#!/usr/bin/env bash
# Creates a bucket on an S3-compatible endpoint with the dev credentials
# (curl signs the request with SigV4; no other client is needed).
# Usage: dev/mkbucket.sh http://127.0.0.1:9000 bucket
set -euo pipefail
endpoint=$1 bucket=$2
code=$(curl -sS -o /dev/null -w '%{http_code}' --aws-sigv4 "aws:amz:${MORAX_TEST_S3_REGION:-us-east-1}:s3" \
	--user "${MORAX_TEST_S3_ACCESS_KEY:-minioadmin}:${MORAX_TEST_S3_SECRET_KEY:-minioadmin}" -X PUT "$endpoint/$bucket")
case $code in
200 | 409) ;; # 409: BucketAlreadyOwnedByYou
*) echo "mkbucket: PUT $endpoint/$bucket answered $code" >&2; exit 1 ;;
esac
