// Every error twinframe raises on purpose: one code, a default message and,
// where the error reaches an RTSP client, the status it maps to.

export interface ErrorSpec {
  readonly message: string;
  /** RTSP status code when this error answers an RTSP request. */
  readonly rtspStatus?: number;
}

export const errorCodes = {
  // Assets and their index
  TF_ASSET_NOT_FOUND: { message: 'asset not found', rtspStatus: 404 },
  TF_ASSET_UNREADABLE: { message: 'asset cannot be read', rtspStatus: 404 },
  TF_ASSET_EMPTY: { message: 'asset is empty' },
  TF_ASSET_NOT_TS: { message: 'asset is not an MPEG transport stream' },
  TF_ASSET_TRUNCATED: { message: 'asset is truncated' },
  TF_ASSET_NO_PAT: { message: 'asset has no program association table' },
  TF_ASSET_NO_PMT: { message: 'asset has no program map table' },
  TF_ASSET_NO_PCR: { message: 'asset has no program clock reference' },
  TF_INDEX_CORRUPT: { message: 'asset index file is corrupt' },

  // Sessions and the engine
  TF_SESSION_NOT_FOUND: { message: 'session not found', rtspStatus: 454 },
  // A fault of its destination or asset ended it; RTSP tears such a session down at once.
  TF_SESSION_FAILED: { message: 'session ended by a fault', rtspStatus: 454 },
  TF_SESSION_INVALID_STATE: { message: 'method not valid in this session state', rtspStatus: 455 },
  TF_SESSION_LIMIT: { message: 'stream count limit reached', rtspStatus: 453 },
  TF_BANDWIDTH_LIMIT: { message: 'bandwidth limit reached', rtspStatus: 453 },
  TF_RANGE_INVALID: { message: 'range not satisfiable', rtspStatus: 457 },
  TF_COMMAND_QUEUE_FULL: { message: 'data path command queue is full', rtspStatus: 503 },
  TF_NO_DATA_PATH: { message: 'no data path is streaming', rtspStatus: 503 },
  TF_ENGINE_STOPPED: { message: 'engine is stopped', rtspStatus: 503 },
  TF_PORTS_EXHAUSTED: { message: 'no free server port pair', rtspStatus: 503 },

  // Failover and administration
  TF_HEARTBEAT_TOO_SLOW: { message: 'worst-case failure detection would exceed one frame interval' },
  TF_FAILOVER_ILLEGAL_COMMAND: { message: 'command not allowed in this failover state' },
  TF_FAILOVER_NO_STANDBY: { message: 'no synchronized standby data path to switch to' },
  TF_FAULT_INJECTION_DISABLED: { message: 'fault injection is disabled by configuration' },
  TF_CONFIG_INVALID: { message: 'configuration is invalid' },
  TF_ADMIN_BAD_REQUEST: { message: 'malformed admin request' },
  TF_ADMIN_SOCKET_IN_USE: { message: 'admin socket path is in use by another file or server' },
  TF_INTERNAL: { message: 'internal error', rtspStatus: 500 },

  // The process pair (a hot-standby twinframe process)
  TF_PAIR_LINK: { message: 'the private link of the process pair failed' },
  TF_PAIR_AUTH: { message: 'the other process of the pair did not prove the shared secret' },
  TF_PAIR_SWITCH: { message: 'the roles of the process pair cannot be switched now' },

  // Broadcasts (the broadcast table)
  TF_BROADCAST_NOT_FOUND: { message: 'no such broadcast', rtspStatus: 404 },
  TF_BROADCAST_EXISTS: { message: 'a broadcast of that name exists' },
  TF_BROADCAST_DESTINATION: { message: 'the server may not send a broadcast there' },
  TF_BROADCAST_STANDBY: { message: 'this process is a standby of a process pair: its broadcast table runs once it sends' },
  TF_BROADCAST_FILE_CHANGED: { message: 'the broadcast differs in the configuration file from the running table (not reloaded yet)' },

  // RTSP protocol
  TF_RTSP_BAD_REQUEST: { message: 'bad request', rtspStatus: 400 },
  TF_RTSP_FORBIDDEN: { message: 'forbidden', rtspStatus: 403 },
  TF_RTSP_NOT_FOUND: { message: 'not found', rtspStatus: 404 },
  TF_RTSP_METHOD_NOT_ALLOWED: { message: 'method not allowed for this resource', rtspStatus: 405 },
  TF_RTSP_REQUEST_TOO_LARGE: { message: 'request too large', rtspStatus: 413 },
  TF_RTSP_HEADER_NOT_VALID: { message: 'header field not valid for resource', rtspStatus: 456 },
  TF_RTSP_UNSUPPORTED_TRANSPORT: { message: 'unsupported transport', rtspStatus: 461 },
  TF_RTSP_NOT_IMPLEMENTED: { message: 'method not implemented', rtspStatus: 501 },
  TF_RTSP_VERSION_NOT_SUPPORTED: { message: 'RTSP version not supported', rtspStatus: 505 },
  TF_RTSP_NOT_ACCEPTABLE: { message: 'no acceptable description format', rtspStatus: 406 },
  TF_RTSP_REQUEST_TIMEOUT: { message: 'request not completed in time', rtspStatus: 408 },
  TF_RTSP_PARAMETER_NOT_UNDERSTOOD: { message: 'parameter not understood', rtspStatus: 451 },
  TF_RTSP_DESTINATION_UNREACHABLE: { message: 'destination unreachable', rtspStatus: 462 },
  TF_RTSP_OPTION_NOT_SUPPORTED: { message: 'option not supported', rtspStatus: 551 },
  TF_RTSP_TOO_MANY_CONNECTIONS: { message: 'too many RTSP connections', rtspStatus: 503 },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof errorCodes;

export class TwinframeError extends Error {
  readonly code: ErrorCode;
  readonly rtspStatus: number | undefined;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: ErrorCode, message?: string, details: Record<string, unknown> = {}) {
    const spec: ErrorSpec = errorCodes[code];
    super(message ?? spec.message);
    this.name = 'TwinframeError';
    this.code = code;
    this.rtspStatus = spec.rtspStatus;
    this.details = details;
  }
}

export function isTwinframeError(err: unknown, code?: ErrorCode): err is TwinframeError {
  return err instanceof TwinframeError && (code === undefined || err.code === code);
}
