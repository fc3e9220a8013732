import type { FastifyInstance } from 'fastify';
import type { Ctx } from '../context.js';

export function registerContactRoutes(_app: FastifyInstance, _ctx: Ctx): void {}
