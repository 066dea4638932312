# The DR network, where failover launches recovery VMs, and the isolated drill network:
# its default routes are deleted, so it reaches nothing but Google APIs (private access,
# 199.36.153.8/30) and itself. Subnets carry the names the policy's recovery uses.

locals {
  private_google_apis = "199.36.153.8/30"
  subnet_index        = { for i, name in var.dr_subnet_names : name => i }
}

resource "google_compute_network" "dr" {
  name                    = "${var.name}-dr"
  auto_create_subnetworks = false
  routing_mode            = "REGIONAL"
}

resource "google_compute_network" "drill" {
  name                            = "${var.name}-drill"
  auto_create_subnetworks         = false
  routing_mode                    = "REGIONAL"
  delete_default_routes_on_create = true
}

resource "google_compute_subnetwork" "dr" {
  for_each = local.subnet_index

  name                     = each.key
  network                  = google_compute_network.dr.id
  region                   = var.region
  ip_cidr_range            = cidrsubnet(var.dr_cidr, 8, each.value)
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_subnetwork" "drill" {
  for_each = local.subnet_index

  name                     = "${each.key}-drill"
  network                  = google_compute_network.drill.id
  region                   = var.region
  ip_cidr_range            = cidrsubnet(var.drill_cidr, 8, each.value)
  private_ip_google_access = true

  log_config {
    aggregation_interval = "INTERVAL_5_SEC"
    flow_sampling        = 0.5
    metadata             = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_route" "drill_google_apis" {
  name             = "${var.name}-drill-google-apis"
  network          = google_compute_network.drill.name
  dest_range       = local.private_google_apis
  next_hop_gateway = "default-internet-gateway"
}

resource "google_compute_firewall" "dr_service" {
  count = length(var.dr_ingress_cidrs) > 0 && length(var.dr_security_group_names) > 0 ? 1 : 0

  name          = "${var.name}-dr-service"
  network       = google_compute_network.dr.name
  direction     = "INGRESS"
  source_ranges = var.dr_ingress_cidrs
  target_tags   = var.dr_security_group_names

  allow {
    protocol = "tcp"
    ports    = [for p in var.service_ports : tostring(p)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "drill_internal" {
  name          = "${var.name}-drill-internal"
  network       = google_compute_network.drill.name
  direction     = "INGRESS"
  source_ranges = [var.drill_cidr]

  allow {
    protocol = "tcp"
    ports    = [for p in var.service_ports : tostring(p)]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "drill_egress_apis" {
  name               = "${var.name}-drill-egress-apis"
  network            = google_compute_network.drill.name
  direction          = "EGRESS"
  priority           = 1000
  destination_ranges = [local.private_google_apis, var.drill_cidr]

  allow {
    protocol = "tcp"
    ports    = ["443"]
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

resource "google_compute_firewall" "drill_egress_deny" {
  name               = "${var.name}-drill-egress-deny"
  network            = google_compute_network.drill.name
  direction          = "EGRESS"
  priority           = 65000
  destination_ranges = ["0.0.0.0/0"]

  deny {
    protocol = "all"
  }

  log_config {
    metadata = "INCLUDE_ALL_METADATA"
  }
}

# Drills switch records here instead of in the production zones.
resource "google_dns_managed_zone" "drill" {
  name        = "${var.name}-drill"
  dns_name    = var.drill_zone_dns_name
  description = "drorch drills (${var.name}): private to the drill network"
  visibility  = "private"

  private_visibility_config {
    networks {
      network_url = google_compute_network.drill.id
    }
  }
}
