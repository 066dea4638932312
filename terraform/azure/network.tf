# The DR network (resource group <name>-drorch-dr), where failover launches recovery VMs,
# and the isolated drill network (<name>-drorch-drill): no peering, outbound internet denied,
# only Azure Storage of this region reachable, so a rehearsal cannot touch production.
# Subnets and application security groups carry the names the policy's recovery uses.

locals {
  subnet_index = { for i, name in var.dr_subnet_names : name => i }
}

resource "azurerm_resource_group" "network" {
  name     = "${var.name}-drorch-dr"
  location = var.location
  tags     = local.tags
}

resource "azurerm_resource_group" "drill" {
  name     = "${var.name}-drorch-drill"
  location = var.location
  tags     = merge(local.tags, { "drorch-isolated" = "true" })
}

resource "azurerm_virtual_network" "dr" {
  name                = "${var.name}-dr"
  location            = azurerm_resource_group.network.location
  resource_group_name = azurerm_resource_group.network.name
  address_space       = [var.dr_address_space]
  tags                = local.tags
}

resource "azurerm_virtual_network" "drill" {
  name                = "${var.name}-drill"
  location            = azurerm_resource_group.drill.location
  resource_group_name = azurerm_resource_group.drill.name
  address_space       = [var.drill_address_space]
  tags                = local.tags
}

resource "azurerm_subnet" "dr" {
  for_each = local.subnet_index

  name                            = each.key
  resource_group_name             = azurerm_resource_group.network.name
  virtual_network_name            = azurerm_virtual_network.dr.name
  address_prefixes                = [cidrsubnet(var.dr_address_space, 8, each.value)]
  default_outbound_access_enabled = false
  service_endpoints               = ["Microsoft.Storage"]
}

resource "azurerm_subnet" "drill" {
  for_each = local.subnet_index

  name                            = "${each.key}-drill"
  resource_group_name             = azurerm_resource_group.drill.name
  virtual_network_name            = azurerm_virtual_network.drill.name
  address_prefixes                = [cidrsubnet(var.drill_address_space, 8, each.value)]
  default_outbound_access_enabled = false
  service_endpoints               = ["Microsoft.Storage"]
}

resource "azurerm_application_security_group" "dr" {
  for_each = toset(var.dr_security_group_names)

  name                = each.key
  location            = azurerm_resource_group.network.location
  resource_group_name = azurerm_resource_group.network.name
  tags                = local.tags
}

resource "azurerm_application_security_group" "drill" {
  for_each = toset(var.dr_security_group_names)

  name                = each.key
  location            = azurerm_resource_group.drill.location
  resource_group_name = azurerm_resource_group.drill.name
  tags                = local.tags
}

resource "azurerm_network_security_group" "dr" {
  name                = "${var.name}-dr"
  location            = azurerm_resource_group.network.location
  resource_group_name = azurerm_resource_group.network.name
  tags                = local.tags

  dynamic "security_rule" {
    for_each = length(var.dr_ingress_cidrs) > 0 ? [true] : []
    content {
      name                       = "service-from-allowed-networks"
      description                = "service ports from dr_ingress_cidrs"
      priority                   = 100
      direction                  = "Inbound"
      access                     = "Allow"
      protocol                   = "Tcp"
      source_port_range          = "*"
      destination_port_ranges    = [for p in var.service_ports : tostring(p)]
      source_address_prefixes    = var.dr_ingress_cidrs
      destination_address_prefix = "VirtualNetwork"
    }
  }
}

resource "azurerm_network_security_group" "drill" {
  name                = "${var.name}-drill"
  location            = azurerm_resource_group.drill.location
  resource_group_name = azurerm_resource_group.drill.name
  tags                = local.tags

  security_rule {
    name                       = "storage-out"
    description                = "HTTPS to Azure Storage in this region (restore from the repository)"
    priority                   = 100
    direction                  = "Outbound"
    access                     = "Allow"
    protocol                   = "Tcp"
    source_port_range          = "*"
    destination_port_range     = "443"
    source_address_prefix      = "VirtualNetwork"
    destination_address_prefix = "Storage.${var.location}"
  }

  security_rule {
    name                       = "deny-internet-out"
    description                = "drills reach nothing outside the drill network"
    priority                   = 4000
    direction                  = "Outbound"
    access                     = "Deny"
    protocol                   = "*"
    source_port_range          = "*"
    destination_port_range     = "*"
    source_address_prefix      = "*"
    destination_address_prefix = "Internet"
  }
}

resource "azurerm_subnet_network_security_group_association" "dr" {
  for_each = azurerm_subnet.dr

  subnet_id                 = each.value.id
  network_security_group_id = azurerm_network_security_group.dr.id
}

resource "azurerm_subnet_network_security_group_association" "drill" {
  for_each = azurerm_subnet.drill

  subnet_id                 = each.value.id
  network_security_group_id = azurerm_network_security_group.drill.id
}

# Drills switch records here instead of in the production zones.
resource "azurerm_private_dns_zone" "drill" {
  name                = var.drill_zone_name
  resource_group_name = azurerm_resource_group.drill.name
  tags                = local.tags
}

resource "azurerm_private_dns_zone_virtual_network_link" "drill" {
  name                  = "${var.name}-drill"
  resource_group_name   = azurerm_resource_group.drill.name
  private_dns_zone_name = azurerm_private_dns_zone.drill.name
  virtual_network_id    = azurerm_virtual_network.drill.id
  registration_enabled  = false
  tags                  = local.tags
}
