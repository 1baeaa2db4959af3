/**
 * An `accelerate launch` config equivalent to the torchrun command Vlit runs, written next to each job
 * for teams that launch with Hugging Face accelerate (`accelerate launch --config_file accelerate.yaml
 * -m vlit_worker job.json`). Vlit never runs accelerate itself.
 */

/** Launch settings the YAML describes. */
export interface AccelerateConfigOptions {
  nnodes: number;
  nprocPerNode: number;
  nodeRank: number;
  /** c10d rendezvous `host:port` (node 0). */
  rdzvEndpoint: string;
  backend: 'gloo' | 'nccl';
  strategy: 'ddp' | 'fsdp';
}

/** The accelerate config YAML (keys as `accelerate config` writes them). */
export function accelerateConfigYaml(o: AccelerateConfigOptions): string {
  const at = o.rdzvEndpoint.lastIndexOf(':');
  const cpu = o.backend === 'gloo';
  const type = o.strategy === 'fsdp' ? 'FSDP' : cpu ? 'MULTI_CPU' : 'MULTI_GPU';
  const lines = [
    '# accelerate launch --config_file accelerate.yaml -m vlit_worker job.json  (PYTHONPATH must hold @vlit/trainer/python)',
    'compute_environment: LOCAL_MACHINE',
    'debug: false',
    `distributed_type: ${type}`,
    'downcast_bf16: "no"',
    `machine_rank: ${o.nodeRank}`,
    `main_process_ip: ${o.rdzvEndpoint.slice(0, at)}`,
    `main_process_port: ${o.rdzvEndpoint.slice(at + 1)}`,
    'main_training_function: main',
    'mixed_precision: "no"',
    `num_machines: ${o.nnodes}`,
    `num_processes: ${o.nnodes * o.nprocPerNode}`,
    'rdzv_backend: c10d',
    'same_network: true',
    `use_cpu: ${cpu}`,
  ];
  if (o.strategy === 'fsdp') {
    lines.push(
      'fsdp_config:',
      '  fsdp_version: 2',
      '  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP',
      '  fsdp_reshard_after_forward: true',
      '  fsdp_state_dict_type: FULL_STATE_DICT',
    );
  }
  return `${lines.join('\n')}\n`;
}
