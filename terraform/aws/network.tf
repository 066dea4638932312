# The DR network, where failover launches recovery VMs, and its isolated twin for drills.
# Neither has an internet gateway: recovery VMs reach S3 through a gateway endpoint, and
# operators add the way in (VPN, Direct Connect, a load balancer) that fits their site.
# The drill VPC has no route anywhere but S3, so a rehearsal cannot touch production.

locals {
  networks = {
    dr    = { cidr = var.dr_vpc_cidr, suffix = "" }
    drill = { cidr = var.drill_vpc_cidr, suffix = "-drill" }
  }
  zones = data.aws_availability_zones.available.names
}

resource "aws_vpc" "dr" {
  cidr_block           = var.dr_vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "${var.name}-dr" }
}

resource "aws_vpc" "drill" {
  cidr_block           = var.drill_vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = "${var.name}-drill", "drorch:isolated" = "true" }
}

# Subnets carry the names the policy's recovery refers to (drorch resolves Name tags).
resource "aws_subnet" "dr" {
  for_each = { for i, name in var.dr_subnet_names : name => i }

  vpc_id                  = aws_vpc.dr.id
  cidr_block              = cidrsubnet(var.dr_vpc_cidr, 8, each.value)
  availability_zone       = local.zones[each.value % length(local.zones)]
  map_public_ip_on_launch = false
  tags                    = { Name = each.key }
}

resource "aws_subnet" "drill" {
  for_each = { for i, name in var.dr_subnet_names : name => i }

  vpc_id                  = aws_vpc.drill.id
  cidr_block              = cidrsubnet(var.drill_vpc_cidr, 8, each.value)
  availability_zone       = local.zones[each.value % length(local.zones)]
  map_public_ip_on_launch = false
  tags                    = { Name = "${each.key}-drill", "drorch:isolated" = "true" }
}

resource "aws_route_table" "dr" {
  vpc_id = aws_vpc.dr.id
  tags   = { Name = "${var.name}-dr" }
}

resource "aws_route_table" "drill" {
  vpc_id = aws_vpc.drill.id
  tags   = { Name = "${var.name}-drill" }
}

resource "aws_route_table_association" "dr" {
  for_each = aws_subnet.dr

  subnet_id      = each.value.id
  route_table_id = aws_route_table.dr.id
}

resource "aws_route_table_association" "drill" {
  for_each = aws_subnet.drill

  subnet_id      = each.value.id
  route_table_id = aws_route_table.drill.id
}

resource "aws_vpc_endpoint" "s3_dr" {
  vpc_id            = aws_vpc.dr.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.dr.id]
}

resource "aws_vpc_endpoint" "s3_drill" {
  vpc_id            = aws_vpc.drill.id
  service_name      = "com.amazonaws.${var.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = [aws_route_table.drill.id]
}

# The default groups allow nothing; recovery VMs get the named groups below.
resource "aws_default_security_group" "dr" {
  vpc_id = aws_vpc.dr.id
}

resource "aws_default_security_group" "drill" {
  vpc_id = aws_vpc.drill.id
}

resource "aws_security_group" "dr" {
  for_each = toset(var.dr_security_group_names)

  name        = each.key
  description = "drorch recovery VMs (${each.key}): service ports from dr_ingress_cidrs"
  vpc_id      = aws_vpc.dr.id

  dynamic "ingress" {
    for_each = length(var.dr_ingress_cidrs) > 0 ? var.service_ports : []
    content {
      description = "service port ${ingress.value} from the allowed networks"
      from_port   = ingress.value
      to_port     = ingress.value
      protocol    = "tcp"
      cidr_blocks = var.dr_ingress_cidrs
    }
  }

  egress {
    description = "anything inside the DR VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.dr_vpc_cidr]
  }

  egress {
    description     = "HTTPS to S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [aws_vpc_endpoint.s3_dr.prefix_list_id]
  }
}

# Same names in the drill VPC (group names are unique per VPC): a drill launches with the
# policy's groups unchanged. Only traffic inside the drill VPC and to S3.
resource "aws_security_group" "drill" {
  for_each = toset(var.dr_security_group_names)

  name        = each.key
  description = "drorch drill VMs (${each.key}): isolated, drill VPC and S3 only"
  vpc_id      = aws_vpc.drill.id

  ingress {
    description = "service ports from inside the drill VPC (drill checks)"
    from_port   = 0
    to_port     = 65535
    protocol    = "tcp"
    cidr_blocks = [var.drill_vpc_cidr]
  }

  egress {
    description = "anything inside the drill VPC"
    from_port   = 0
    to_port     = 0
    protocol    = "-1"
    cidr_blocks = [var.drill_vpc_cidr]
  }

  egress {
    description     = "HTTPS to S3 through the gateway endpoint"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    prefix_list_ids = [aws_vpc_endpoint.s3_drill.prefix_list_id]
  }
}

# Drills switch records here instead of in the production zones.
resource "aws_route53_zone" "drill" {
  name    = var.drill_zone_name
  comment = "drorch drills (${var.name}): private to the drill VPC"

  vpc {
    vpc_id = aws_vpc.drill.id
  }
}

# ------------------------------------------------------------------------------ flow logs

resource "aws_cloudwatch_log_group" "flow" {
  for_each = local.networks

  name              = "/drorch/${var.name}/${each.key}/flow-logs"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.storage.arn
}

resource "aws_flow_log" "dr" {
  vpc_id          = aws_vpc.dr.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow["dr"].arn
  iam_role_arn    = aws_iam_role.flow_logs.arn
}

resource "aws_flow_log" "drill" {
  vpc_id          = aws_vpc.drill.id
  traffic_type    = "ALL"
  log_destination = aws_cloudwatch_log_group.flow["drill"].arn
  iam_role_arn    = aws_iam_role.flow_logs.arn
}

data "aws_iam_policy_document" "flow_logs_trust" {
  statement {
    sid     = "VpcFlowLogsAssumesRole"
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = [for g in aws_cloudwatch_log_group.flow : "${g.arn}:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  name               = "${var.name}-drorch-flow-logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_trust.json
}

resource "aws_iam_role_policy" "flow_logs" {
  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs.id
  policy = data.aws_iam_policy_document.flow_logs.json
}
