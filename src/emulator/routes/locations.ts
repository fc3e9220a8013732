import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../context.js';

export function registerLocationRoutes(_app: FastifyInstance, _ctx: Ctx): void {}
