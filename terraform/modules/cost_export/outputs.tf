# ARNs and names are built from the names (main.tf, athena.tf), so they are known before apply: the
# task roles' policies and the services' settings show in full in a plan.

output "bucket_name" {
  description = "The export's bucket."
  value       = aws_s3_bucket.export.id
}

output "bucket_arn" {
  description = "ARN of the export's bucket."
  value       = local.bucket_arn
}

output "export_folder" {
  description = "Key prefix of the export, <prefix>/<export-name>: it holds data/ and metadata/."
  value       = local.export_folder
}

output "export_uri" {
  description = "s3://<bucket>/<prefix>/<export-name>, the folder that holds data/ and metadata/ (FOCUS_EXPORT_URI)."
  value       = "s3://${var.bucket_name}/${local.export_folder}"
}

output "export_arn" {
  description = "ARN of the Data Exports export."
  value       = aws_bcmdataexports_export.focus.export[0].export_arn
}

output "columns" {
  description = "The FOCUS columns the export delivers, in the export's spelling."
  value       = [for column in local.columns : column.name]
}

output "athena_workgroup_name" {
  description = "The Athena workgroup (FOCUS_ATHENA_WORKGROUP); null without athena_enabled."
  value       = var.athena_enabled ? local.workgroup_name : null
  # Services get the name only once the workgroup enforces its results, encryption and scan limit.
  depends_on = [aws_athena_workgroup.focus]
}

output "athena_workgroup_arn" {
  description = "ARN of the Athena workgroup; null without athena_enabled."
  value       = var.athena_enabled ? "arn:${local.partition}:athena:${data.aws_region.current.name}:${local.account_id}:workgroup/${local.workgroup_name}" : null
}

output "athena_database_name" {
  description = "The Glue database (FOCUS_ATHENA_DATABASE); null without athena_enabled."
  value       = var.athena_enabled ? local.database_name : null
}

output "athena_table_name" {
  description = "The Glue table over the export (FOCUS_ATHENA_TABLE); null without athena_enabled."
  value       = var.athena_enabled ? local.table_name : null
  depends_on  = [aws_glue_catalog_table.focus]
}

output "glue_arns" {
  description = "ARNs of the Glue catalog, database and table Athena reads (glue:GetTable needs all three); empty without athena_enabled."
  value = var.athena_enabled ? [
    "arn:${local.partition}:glue:${data.aws_region.current.name}:${local.account_id}:catalog",
    "arn:${local.partition}:glue:${data.aws_region.current.name}:${local.account_id}:database/${local.database_name}",
    "arn:${local.partition}:glue:${data.aws_region.current.name}:${local.account_id}:table/${local.database_name}/${local.table_name}",
  ] : []
}

output "athena_results_bucket_arn" {
  description = "ARN of the bucket of the query results; null without athena_enabled."
  value       = var.athena_enabled ? local.results_bucket_arn : null
}

output "athena_results_prefix" {
  description = "Key prefix of the query results in that bucket; null without athena_enabled."
  value       = var.athena_enabled ? local.results_prefix : null
}
