# The admins' user pool: sign-in through the hosted UI (authorization code flow), an app client
# without a secret (the Billing page runs in a browser), and the group that may use the Billing tab.

resource "aws_cognito_user_pool" "admins" {
  name                = "${var.name_prefix}billing-admins"
  deletion_protection = var.deletion_protection ? "ACTIVE" : "INACTIVE"

  # Admins are invited; nobody signs themselves up for a billing console.
  admin_create_user_config {
    allow_admin_create_user_only = true
  }

  username_attributes = ["email"]
  # Anna@x.de and anna@x.de are one person: one user, one account (the invitation also lower-cases).
  # Changing this replaces the pool (Cognito fixes it at creation), so it is set from the start.
  username_configuration {
    case_sensitive = false
  }
  auto_verified_attributes = ["email"]
  mfa_configuration        = "OPTIONAL"

  software_token_mfa_configuration {
    enabled = true
  }

  password_policy {
    minimum_length                   = 12
    require_lowercase                = true
    require_uppercase                = true
    require_numbers                  = true
    require_symbols                  = true
    temporary_password_validity_days = 3
  }

  account_recovery_setting {
    recovery_mechanism {
      name     = "verified_email"
      priority = 1
    }
  }
}

resource "aws_cognito_user_pool_client" "billing_page" {
  name         = "${var.name_prefix}billing-page"
  user_pool_id = aws_cognito_user_pool.admins.id

  generate_secret                      = false # a browser page cannot keep a client secret
  allowed_oauth_flows_user_pool_client = true
  allowed_oauth_flows                  = ["code"]
  allowed_oauth_scopes                 = ["openid", "email", "profile"]
  supported_identity_providers         = ["COGNITO"]
  callback_urls                        = var.callback_urls
  logout_urls                          = var.logout_urls
  explicit_auth_flows                  = ["ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
  prevent_user_existence_errors        = "ENABLED"
  enable_token_revocation              = true

  access_token_validity  = 60
  id_token_validity      = 60
  refresh_token_validity = 12
  token_validity_units {
    access_token  = "minutes"
    id_token      = "minutes"
    refresh_token = "hours"
  }
}

resource "aws_cognito_user_group" "admin" {
  name         = var.admin_group
  user_pool_id = aws_cognito_user_pool.admins.id
  description  = "May use the Billing tab."
}

# The company running the billing: the operator API and page, every account.
resource "aws_cognito_user_group" "operator" {
  name         = var.operator_group
  user_pool_id = aws_cognito_user_pool.admins.id
  description  = "The company running the billing: every account."
}

resource "aws_cognito_user_pool_domain" "hosted_ui" {
  domain       = var.domain_prefix
  user_pool_id = aws_cognito_user_pool.admins.id
}
