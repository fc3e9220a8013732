export * from './aes.js';
export * from './keyring.js';
