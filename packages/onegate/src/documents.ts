/**
 * The JSON OneGate answers, as OpenNebula/one f847cf2e9a78da302cd0344505f93eadc43a6d28 builds it:
 * - GET /vm: src/onegate/onegate-server.rb build_vm_hash — VM {NAME, ID, STATE, LCM_STATE, USER_TEMPLATE
 *   (without SCHED_MESSAGE), TEMPLATE {NIC: [...], NIC_ALIAS: [...]}}, each NIC reduced to NIC_VALID_KEYS.
 *   Values come from the VM's XML (src/oca/ruby/opennebula/xml_element.rb to_hash), so they are strings.
 * - GET /service: build_service_hash — SERVICE {name, id, state, roles: [{name, cardinality, state,
 *   nodes: [{deploy_id, running, vm_info}]}]}. Without `extended`, vm_info is what OneFlow stored
 *   (src/flow/lib/models/role.rb fill_node_info: VM {ID, UID, GID, UNAME, GNAME, NAME}); with it,
 *   the VM's whole to_hash ({VM: {..., USER_TEMPLATE, TEMPLATE: {NIC: one object or an array, ...}}}).
 *   `running` is passed through from OneFlow's node, which no longer sets it (null).
 */

/** A NIC as GET /vm gives it (NIC_VALID_KEYS of onegate-server.rb). */
export interface VmNic {
  IP?: string;
  IP6_LINK?: string;
  IP6_SITE?: string;
  IP6_GLOBAL?: string;
  NETWORK?: string;
  MAC?: string;
  NAME?: string;
  PARENT?: string;
  EXTERNAL?: string;
  EXTERNAL_IP?: string;
}

export interface VmDocument {
  VM: {
    NAME: string;
    ID: string;
    STATE: string;
    LCM_STATE: string;
    USER_TEMPLATE: Record<string, unknown>;
    TEMPLATE: { NIC: VmNic[]; NIC_ALIAS: VmNic[] };
  };
}

/** One VM in OpenNebula's to_hash form: XML elements as strings, a repeated element as an array. */
export interface VmInfo {
  VM: Record<string, unknown> & {
    ID: string;
    NAME: string;
    USER_TEMPLATE?: Record<string, unknown>;
    TEMPLATE?: Record<string, unknown> & { NIC?: VmNic | VmNic[] };
  };
}

export interface ServiceNode {
  deploy_id: number;
  running: boolean | null;
  vm_info: VmInfo | null;
}

export interface ServiceRole {
  name: string;
  cardinality: number;
  state: number;
  nodes: ServiceNode[];
}

export interface ServiceDocument {
  SERVICE: { name: string; id: string; state: number; roles: ServiceRole[] };
}

/** A node's NICs as a list (to_hash gives one NIC as an object). */
export function nodeNics(node: ServiceNode): VmNic[] {
  const nic = node.vm_info?.VM.TEMPLATE?.NIC;
  return nic === undefined ? [] : Array.isArray(nic) ? nic : [nic];
}
