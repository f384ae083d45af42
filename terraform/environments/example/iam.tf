# One least-privilege policy per service.

locals {
  table_and_index_arns = { for name, arn in module.data.table_arns : name => [arn, "${arn}/index/*"] }
  item_actions = [
    "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem",
    "dynamodb:Query", "dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem",
  ]
  # Transactions check the same item permissions; these two only name the API.
  transaction_actions = ["dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"]
  # The billing run reads every account page by page; the operator API lists accounts and invoices.
  scan_actions = ["dynamodb:Scan"]
  # The e-invoice files live under einvoices/ (billing_core.use_cases.einvoices.object_key).
  einvoice_objects = "${module.data.einvoice_bucket_arn}/einvoices/*"

  # The FOCUS cost export (cost_source = "focus"): its bucket, and its folder <prefix>/<export-name>,
  # which holds data/ and metadata/. Null without the export (the documents below are not created).
  focus_export_bucket  = one(module.cost_export[*].bucket_arn)
  focus_export_folder  = one(module.cost_export[*].export_folder)
  focus_export_objects = local.focus_enabled ? "${local.focus_export_bucket}/${local.focus_export_folder}/*" : null
  # With focus_engine = "athena": the workgroup, the Glue catalog, database and table, and the prefix
  # Athena writes the query results to.
  focus_workgroup       = one(module.cost_export[*].athena_workgroup_arn)
  focus_glue_resources  = flatten(module.cost_export[*].glue_arns)
  focus_results_bucket  = one(module.cost_export[*].athena_results_bucket_arn)
  focus_results_objects = local.focus_athena_enabled ? "${local.focus_results_bucket}/${one(module.cost_export[*].athena_results_prefix)}/*" : null
}

# The adapter (billing_core.adapters.s3_documents) takes a 404 for "no such file": S3 answers a HEAD or
# GET of a missing key with 404 only to a caller that may list the bucket, and with 403 otherwise.
data "aws_iam_policy_document" "einvoices_absent_is_404" {
  statement {
    sid       = "EInvoiceAbsentIs404"
    actions   = ["s3:ListBucket"]
    resources = [module.data.einvoice_bucket_arn]
  }
}

data "aws_iam_policy_document" "read_stripe_secret" {
  statement {
    sid       = "ReadStripeSecret"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [module.data.stripe_secret_arn]
  }
  statement {
    sid       = "DecryptDataKey"
    actions   = ["kms:Decrypt"]
    resources = [module.data.kms_key_arn]
  }
}

data "aws_iam_policy_document" "read_costs" {
  statement {
    #checkov:skip=CKV_AWS_356:Cost Explorer has no resource-level permissions; "*" is the only resource it accepts.
    sid       = "ReadCostExplorer"
    actions   = ["ce:GetCostAndUsage"]
    resources = ["*"]
  }
}

# --- the FOCUS cost export: read by billing-api (preview) and the worker (invoices) alike -------------

# The adapter (billing_core.adapters.focus_export) reads each period's manifest and the Parquet files
# it lists (GetObject) and takes a 404 for "not delivered yet": S3 answers a GET of a missing key with
# 404 only to a caller that may list (ListBucket), else 403. Listing only within the export's folder.
data "aws_iam_policy_document" "read_focus_export" {
  count = local.focus_enabled ? 1 : 0
  statement {
    sid       = "ListFocusExport"
    actions   = ["s3:ListBucket"]
    resources = [local.focus_export_bucket]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [local.focus_export_folder, "${local.focus_export_folder}/*"]
    }
  }
  # The files are encrypted with the data key: each role's own statement grants kms:Decrypt on it.
  statement {
    sid       = "ReadFocusExport"
    actions   = ["s3:GetObject"]
    resources = [local.focus_export_objects]
  }
}

# With focus_engine = "athena" (billing_core.adapters.focus_athena): the services run their queries
# in the workgroup and read the answers back. Athena then acts with the caller's permissions: it reads
# the table from Glue (GetPartitions only without partition projection; granted as the table may lose
# it), reads the export's files (above; GetBucketLocation here) and writes each result under the
# workgroup's results prefix (a multipart upload for a large one), encrypted with the data key
# (kms:GenerateDataKey, kms:Decrypt in each role's own statement).
data "aws_iam_policy_document" "query_focus_athena" {
  count = local.focus_athena_enabled ? 1 : 0
  statement {
    sid       = "RunFocusQueries"
    actions   = ["athena:StartQueryExecution", "athena:GetQueryExecution", "athena:GetQueryResults"]
    resources = [local.focus_workgroup]
  }
  statement {
    sid       = "ReadFocusTable"
    actions   = ["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"]
    resources = local.focus_glue_resources
  }
  statement {
    sid       = "AthenaLocatesBuckets"
    actions   = ["s3:GetBucketLocation"]
    resources = [local.focus_export_bucket, local.focus_results_bucket]
  }
  statement {
    sid       = "AthenaListsResults"
    actions   = ["s3:ListBucket", "s3:ListBucketMultipartUploads"]
    resources = [local.focus_results_bucket]
  }
  statement {
    sid       = "AthenaWritesResults"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [local.focus_results_objects]
  }
}

data "aws_iam_policy_document" "billing_api" {
  source_policy_documents = concat([
    data.aws_iam_policy_document.read_stripe_secret.json, data.aws_iam_policy_document.read_costs.json,
    data.aws_iam_policy_document.einvoices_absent_is_404.json,
  ], data.aws_iam_policy_document.read_focus_export[*].json, data.aws_iam_policy_document.query_focus_athena[*].json)
  statement {
    sid     = "OwnTables"
    actions = concat(local.item_actions, local.transaction_actions, local.scan_actions)
    # events: the cost preview caches its Cost Explorer answer there, filled under a lease.
    resources = flatten([for table in ["billing", "payment-methods", "events"] : local.table_and_index_arns[table]])
  }
  statement {
    sid       = "TableKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.data.kms_key_arn]
  }
  # A customer downloads an invoice's XRechnung or ZUGFeRD file (GetObject; Decrypt above).
  statement {
    sid       = "ReadEInvoices"
    actions   = ["s3:GetObject"]
    resources = [local.einvoice_objects]
  }
  # Credit notes are e-mailed by the worker: billing-api only queues them (TableKeys above covers the
  # data key the queue is encrypted with).
  statement {
    sid       = "QueueDocumentMail"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [module.data.queue_arns["document-mail"]]
  }
  # The operator page invites a customer's admins: a user in the pool, put into the admin group; the
  # person's groups are read first (an operator is never invited as a customer's admin).
  statement {
    sid = "InviteAdmins"
    actions = [
      "cognito-idp:AdminCreateUser", "cognito-idp:AdminGetUser", "cognito-idp:ListUsers", "cognito-idp:AdminListGroupsForUser",
      "cognito-idp:AdminAddUserToGroup",
    ]
    resources = [module.cognito.user_pool_arn]
  }
}

data "aws_iam_policy_document" "webhook_receiver" {
  source_policy_documents = [data.aws_iam_policy_document.read_stripe_secret.json]
  statement {
    sid       = "EnqueueStripeEvents"
    actions   = ["sqs:SendMessage", "sqs:GetQueueAttributes"]
    resources = [module.data.queue_arns["stripe-events"]]
  }
  statement {
    sid       = "EncryptMessages"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [module.data.kms_key_arn]
  }
}

data "aws_iam_policy_document" "scheduler_worker" {
  source_policy_documents = concat([
    data.aws_iam_policy_document.read_stripe_secret.json, data.aws_iam_policy_document.read_costs.json,
    data.aws_iam_policy_document.einvoices_absent_is_404.json,
  ], data.aws_iam_policy_document.read_focus_export[*].json, data.aws_iam_policy_document.query_focus_athena[*].json)
  statement {
    sid       = "AllTables"
    actions   = concat(local.item_actions, local.transaction_actions, local.scan_actions)
    resources = flatten(values(local.table_and_index_arns))
  }
  # billing-jobs, stripe-events, document-mail and mail-events.
  statement {
    sid = "AllQueues"
    actions = [
      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
      "sqs:GetQueueAttributes",
    ]
    resources = values(module.data.queue_arns)
  }
  # The dead-letter monitor finds each queue's DLQ by name and reads its depth; the consumers put a poison
  # message there with its reason; `billing events dlq|redrive` (run in this task) reads and moves them.
  statement {
    sid = "DeadLetters"
    actions = [
      "sqs:GetQueueUrl", "sqs:GetQueueAttributes", "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
      "sqs:ChangeMessageVisibility",
    ]
    resources = values(module.data.dead_letter_queue_arns)
  }
  statement {
    sid       = "DataKeys"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.data.kms_key_arn]
  }
  # The mail job sends each queued document through SES v2 SendEmail with raw MIME content, from the
  # invoice sender only, through the domain identity and in the configuration set that reports its
  # events. SendEmail is authorized as ses:SendEmail on the identity and the named configuration set
  # (Service Authorization Reference, SES v2); with raw content SES also checks ses:SendRawEmail on the
  # identity (AccessDenied naming that action, reported for SES v2 SendEmail with Content.Raw).
  statement {
    sid       = "SendInvoiceMail"
    actions   = ["ses:SendEmail", "ses:SendRawEmail"]
    resources = [module.data.mail_identity_arn, module.data.mail_configuration_set_arn]
    condition {
      test     = "StringEquals"
      variable = "ses:FromAddress"
      values   = [module.data.mail_from]
    }
  }
  # The invoice job writes each file once (HeadObject, then PutObject; HEAD needs s3:GetObject); the
  # operator's invoices command reads them. Object Lock keeps them: no delete, no lock changes here.
  statement {
    sid       = "WriteEInvoices"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [local.einvoice_objects]
  }
}
