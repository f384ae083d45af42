# The whole system in one AWS account and region: network, load balancer, the data plane, Cognito,
# and the three services on Fargate. See ../../README.md ("Deploy to AWS").

locals {
  name_prefix = "${var.environment}-"
  services    = ["billing-api", "webhook-receiver", "scheduler-worker"]
  # The admin page (served by billing-api); the Hosted UI sends the admin back here after sign-in and sign-out.
  admin_page_url    = "https://${var.public_host_name}/admin/billing"
  operator_page_url = "https://${var.public_host_name}/operator"
  hosted_ui_url     = "https://${module.cognito.hosted_ui_domain}.auth.${var.region}.amazoncognito.com"
  # The worker touches this file while it is healthy; its container health check reads the file's age.
  worker_heartbeat_file = "/tmp/scheduler-worker.heartbeat"
  invoice_mail_from     = coalesce(var.invoice_mail_from, "rechnung@${var.mail_domain}")
  # The FOCUS cost export (module cost_export) exists only with cost_source = "focus", its Athena
  # table and workgroup only with focus_engine = "athena" as well.
  focus_enabled        = var.cost_source == "focus"
  focus_athena_enabled = local.focus_enabled && var.focus_engine == "athena"
  focus_bucket_name    = "${local.name_prefix}billing-cost-export"
}

data "aws_caller_identity" "current" {}

module "network" {
  source = "../../modules/network"

  name_prefix         = local.name_prefix
  availability_zones  = var.availability_zones
  flow_log_bucket_arn = aws_s3_bucket.logs.arn
}

module "data" {
  source = "../../modules/data"

  name_prefix              = local.name_prefix
  alarm_email              = var.alarm_email
  einvoice_retention_years = var.einvoice_retention_years
  einvoice_retention_mode  = var.einvoice_retention_mode
  mail_domain              = var.mail_domain
  mail_from                = local.invoice_mail_from
  # Lets AWS Data Exports encrypt the export's files with the data key, for that bucket only.
  cost_export_bucket_name = local.focus_enabled ? local.focus_bucket_name : null
}

module "cost_export" {
  source = "../../modules/cost_export"
  count  = local.focus_enabled ? 1 : 0
  providers = {
    aws              = aws
    aws.data_exports = aws.us_east_1
  }

  name_prefix                           = local.name_prefix
  bucket_name                           = local.focus_bucket_name
  kms_key_arn                           = module.data.kms_key_arn
  athena_enabled                        = local.focus_athena_enabled
  athena_bytes_scanned_cutoff_per_query = var.focus_athena_bytes_scanned_cutoff_per_query
}

module "cognito" {
  source = "../../modules/cognito"

  name_prefix   = local.name_prefix
  domain_prefix = var.cognito_domain_prefix
  callback_urls = [local.admin_page_url, local.operator_page_url]
  logout_urls   = [local.admin_page_url, local.operator_page_url]
}

module "alb" {
  source = "../../modules/alb"

  name_prefix       = local.name_prefix
  vpc_id            = module.network.vpc_id
  vpc_cidr_block    = module.network.vpc_cidr_block
  subnet_ids        = module.network.public_subnet_ids
  certificate_arn   = var.certificate_arn
  access_log_bucket = aws_s3_bucket.logs.id

  depends_on = [aws_s3_bucket_policy.logs]
}

resource "aws_ecs_cluster" "this" {
  #checkov:skip=CKV_AWS_65:Container Insights bills per metric (several USD/month at idle); the default ECS service metrics and the DLQ alarms cover this system.
  name = "${local.name_prefix}billing"
  setting {
    name  = "containerInsights"
    value = "disabled"
  }
}

resource "aws_ecr_repository" "service" {
  for_each             = toset(local.services)
  name                 = "${local.name_prefix}${each.key}"
  image_tag_mutability = "IMMUTABLE"
  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.data.kms_key_arn
  }
}

resource "aws_ecr_lifecycle_policy" "service" {
  for_each   = aws_ecr_repository.service
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last 20 images"
      selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = 20 }
      action       = { type = "expire" }
    }]
  })
}

locals {
  # Settings of billing_core.settings.Settings per service (never secrets). A setting not set here runs
  # with its default; tests/infra/test_deployed_settings.py names every such setting and why its default is right.
  common_environment = {
    AWS_REGION            = var.region
    BILLING_TABLE         = module.data.table_names["billing"]
    PAYMENT_METHODS_TABLE = module.data.table_names["payment-methods"]
    EVENTS_TABLE          = module.data.table_names["events"]
    STRIPE_SECRET_ID      = module.data.stripe_secret_name
    BILLING_CURRENCY      = var.billing_currency
    LOG_LEVEL             = "INFO"
  }
  # How costs are priced: the worker's invoices and billing-api's cost preview must agree.
  # Without fx_rate, every process converts at the ECB rate stored for the period; a manual rate overrides it.
  pricing_environment = merge({
    BASE_FEE         = var.base_fee
    MARKUP_PERCENT   = var.markup_percent
    INVOICE_LANGUAGE = var.invoice_language
    COST_GROUP_BY    = var.cost_group_by
    }, var.fx_rate == null ? {} : {
    FX_RATE   = var.fx_rate
    FX_SOURCE = coalesce(var.fx_source, "manual")
    FX_DATE   = var.fx_date
  })
  # VAT: the worker puts it on the invoices; billing-api gets the same so that anything it shows of
  # an invoice's VAT agrees with what the worker bills.
  tax_environment = {
    TAX_MODE = var.tax_mode
    VAT_RATE = var.vat_rate
  }
  # Where the costs come from; both read them (the worker's invoices, billing-api's preview), so both
  # get the same. Nothing with cost_source = "cost-explorer": COST_SOURCE's default.
  focus_environment = !local.focus_enabled ? {} : merge({
    COST_SOURCE      = "focus"
    FOCUS_EXPORT_URI = one(module.cost_export[*].export_uri)
    FOCUS_ENGINE     = var.focus_engine
    }, var.focus_engine == "athena" ? {
    FOCUS_ATHENA_WORKGROUP = one(module.cost_export[*].athena_workgroup_name)
    FOCUS_ATHENA_DATABASE  = one(module.cost_export[*].athena_database_name)
    FOCUS_ATHENA_TABLE     = one(module.cost_export[*].athena_table_name)
    } : {
    # DuckDB caps each query at this and spills to /tmp beyond it: a quarter of the tasks' 512 MiB
    # (module ecs_service), as several queries can run at once (gunicorn workers, worker threads).
    FOCUS_MEMORY_LIMIT = "128MB"
  })
  # Where the worker writes each finalized invoice's e-invoice files and billing-api reads them.
  einvoice_environment = {
    EINVOICE_BUCKET = module.data.einvoice_bucket_name
  }
  # Invoice e-mail: billing-api queues credit-note mails on document-mail; the worker sends every queued
  # document through SES in the configuration set, paced to the account's rate, and reads SES's events.
  mail_queue_environment = {
    DOCUMENT_MAIL_QUEUE_URL = module.data.queue_urls["document-mail"]
  }
  mail_environment = merge(local.mail_queue_environment, {
    MAIL_EVENTS_QUEUE_URL          = module.data.queue_urls["mail-events"]
    INVOICE_MAIL_FROM              = module.data.mail_from
    INVOICE_MAIL_FROM_NAME         = coalesce(var.invoice_mail_from_name, var.seller.name)
    INVOICE_MAIL_CONFIGURATION_SET = module.data.mail_configuration_set_name
    # The e-mail of an invoice whose payment failed links the Billing tab.
    BILLING_PAGE_URL = local.admin_page_url
    # The rate is per task and SES's per account: split it over the most tasks autoscaling runs, to a
    # thousandth and rounded down (never whole numbers: 1/s in the sandbox would become 1/s per task).
    SES_MAX_SEND_RATE = tostring(max(0.001, floor(var.ses_max_send_rate * 1000 / var.worker_max_count) / 1000))
    }, var.invoice_mail_reply_to == null ? {} : {
    INVOICE_MAIL_REPLY_TO = var.invoice_mail_reply_to
  })
  seller_environment = { for name, value in {
    SELLER_NAME          = var.seller.name
    SELLER_STREET        = var.seller.street
    SELLER_POSTAL_CODE   = var.seller.postal_code
    SELLER_CITY          = var.seller.city
    SELLER_COUNTRY       = var.seller.country
    SELLER_VAT_ID        = var.seller.vat_id
    SELLER_TAX_NUMBER    = var.seller.tax_number
    SELLER_CONTACT_NAME  = var.seller.contact_name
    SELLER_CONTACT_PHONE = var.seller.contact_phone
    SELLER_CONTACT_EMAIL = var.seller.contact_email
    SEPA_CREDITOR_ID     = var.seller.sepa_creditor_id
  } : name => value if value != null }
  web_environment = {
    # gunicorn trusts X-Forwarded-* only from the load balancer, which is inside the VPC.
    FORWARDED_ALLOW_IPS = module.network.vpc_cidr_block
    WEB_CONCURRENCY     = "2"
  }
  service_environment = {
    "billing-api" = merge(local.common_environment, local.pricing_environment, local.focus_environment, local.tax_environment, local.einvoice_environment, local.mail_queue_environment, local.web_environment, {
      GUNICORN_BIND        = "0.0.0.0:8000"
      COGNITO_USER_POOL_ID = module.cognito.user_pool_id
      COGNITO_CLIENT_ID    = module.cognito.client_id
      ADMIN_GROUP          = module.cognito.admin_group
      OPERATOR_GROUP       = module.cognito.operator_group
      AUTH_MODE            = "hosted-ui"
      COGNITO_DOMAIN       = local.hosted_ui_url
      PAGE_LANGUAGE        = var.page_language
    })
    "webhook-receiver" = merge(local.common_environment, local.web_environment, {
      GUNICORN_BIND           = "0.0.0.0:8001"
      STRIPE_EVENTS_QUEUE_URL = module.data.queue_urls["stripe-events"]
    })
    "scheduler-worker" = merge(local.common_environment, local.pricing_environment, local.focus_environment, local.tax_environment, local.einvoice_environment, local.seller_environment, local.mail_environment, {
      BILLING_JOBS_QUEUE_URL  = module.data.queue_urls["billing-jobs"]
      STRIPE_EVENTS_QUEUE_URL = module.data.queue_urls["stripe-events"]
      BILLING_CRON            = var.billing_cron
      # The limit is per task and Stripe's per account: split the budget over the most tasks autoscaling runs.
      STRIPE_MAX_REQUESTS_PER_SECOND = tostring(max(1, floor(var.stripe_max_requests_per_second / var.worker_max_count)))
      WORKER_HEARTBEAT_FILE          = local.worker_heartbeat_file
    })
  }
  http_health_check = ["python", "/app/deploy/healthcheck.py"]
  # Each task's health check: the image's own HEALTHCHECK (tests/infra/test_ecs_parity.py holds them equal).
  health_checks = {
    "billing-api"      = concat(local.http_health_check, ["http://127.0.0.1:8000/healthz"])
    "webhook-receiver" = concat(local.http_health_check, ["http://127.0.0.1:8001/healthz"])
    "scheduler-worker" = ["python", "/app/deploy/healthcheck.py", "--heartbeat", local.worker_heartbeat_file, "--max-age", "120"]
  }
  images = { for name, repository in aws_ecr_repository.service : name => "${repository.repository_url}:${var.image_tag}" }
}

module "billing_api" {
  source = "../../modules/ecs_service"

  name                  = "billing-api"
  name_prefix           = local.name_prefix
  cluster_arn           = aws_ecs_cluster.this.arn
  image                 = local.images["billing-api"]
  container_port        = 8000
  target_group_arn      = module.alb.api_target_group_arn
  alb_security_group_id = module.alb.security_group_id
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  log_kms_key_arn       = module.data.kms_key_arn
  task_policy_json      = data.aws_iam_policy_document.billing_api.json
  health_check_command  = local.health_checks["billing-api"]
  environment           = local.service_environment["billing-api"]
}

module "webhook_receiver" {
  source = "../../modules/ecs_service"

  name                  = "webhook-receiver"
  name_prefix           = local.name_prefix
  cluster_arn           = aws_ecs_cluster.this.arn
  image                 = local.images["webhook-receiver"]
  container_port        = 8001
  target_group_arn      = module.alb.webhook_target_group_arn
  alb_security_group_id = module.alb.security_group_id
  vpc_id                = module.network.vpc_id
  subnet_ids            = module.network.private_subnet_ids
  log_kms_key_arn       = module.data.kms_key_arn
  task_policy_json      = data.aws_iam_policy_document.webhook_receiver.json
  health_check_command  = local.health_checks["webhook-receiver"]
  environment           = local.service_environment["webhook-receiver"]
}

module "scheduler_worker" {
  source = "../../modules/ecs_service"

  name                 = "scheduler-worker"
  name_prefix          = local.name_prefix
  cluster_arn          = aws_ecs_cluster.this.arn
  image                = local.images["scheduler-worker"]
  vpc_id               = module.network.vpc_id
  subnet_ids           = module.network.private_subnet_ids
  log_kms_key_arn      = module.data.kms_key_arn
  task_policy_json     = data.aws_iam_policy_document.scheduler_worker.json
  health_check_command = local.health_checks["scheduler-worker"]
  environment          = local.service_environment["scheduler-worker"]
}

# --- worker autoscaling on queue depth ------------------------------------------------------------

resource "aws_appautoscaling_target" "worker" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.this.name}/${module.scheduler_worker.service_name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = 1
  max_capacity       = var.worker_max_count
}

# About 50 waiting invoice jobs per worker task; a monthly run of many accounts scales out, then back in.
resource "aws_appautoscaling_policy" "worker_queue_depth" {
  name               = "${local.name_prefix}scheduler-worker-queue-depth"
  service_namespace  = aws_appautoscaling_target.worker.service_namespace
  resource_id        = aws_appautoscaling_target.worker.resource_id
  scalable_dimension = aws_appautoscaling_target.worker.scalable_dimension
  policy_type        = "TargetTrackingScaling"

  target_tracking_scaling_policy_configuration {
    target_value       = 50
    scale_in_cooldown  = 300
    scale_out_cooldown = 60

    customized_metric_specification {
      metric_name = "ApproximateNumberOfMessagesVisible"
      namespace   = "AWS/SQS"
      statistic   = "Average"
      dimensions {
        name  = "QueueName"
        value = module.data.queue_names["billing-jobs"]
      }
    }
  }
}
