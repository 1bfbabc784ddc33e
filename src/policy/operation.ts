export type Operation = 'CREATE' | 'UPDATE' | 'DELETE' | 'CONNECT'
export const OPERATIONS: readonly Operation[] = ['CREATE', 'UPDATE', 'DELETE', 'CONNECT']
