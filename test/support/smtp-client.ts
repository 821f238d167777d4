import { connect, type Socket } from 'node:net';
import { ReplyReader, type SmtpReply } from '../../src/upstream/smtp-client/reply-reader.js';

/** A hand-driven SMTP client for tests: write exactly the bytes a case needs, read the replies. */
export interface SmtpDialogue {
  socket: Socket;
  greeting: SmtpReply;
  /** Writes a command (CRLF added) and reads one reply. */
  cmd(line: string): Promise<SmtpReply>;
  /** Writes raw bytes. */
  write(bytes: string | Buffer): void;
  read(timeoutMs?: number): Promise<SmtpReply>;
  /** Resolves when the server closed the connection. */
  closed(): Promise<void>;
  close(): void;
}

export async function dial(port: number, host = '127.0.0.1'): Promise<SmtpDialogue> {
  const socket = connect({ host, port });
  socket.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  const isClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const reader = new ReplyReader(socket);
  const read = (timeoutMs = 10_000): Promise<SmtpReply> => reader.read(timeoutMs);
  const greeting = await read();
  return {
    socket,
    greeting,
    cmd: async (line) => {
      socket.write(line + '\r\n');
      return read();
    },
    write: (bytes) => void socket.write(bytes),
    read,
    closed: () => isClosed,
    close: () => socket.destroy(),
  };
}

export interface SentMessage {
  replies: SmtpReply[];
  /** The reply to the end of data (or the last reply when it never got there). */
  final: SmtpReply;
}

/** One transaction: MAIL, each RCPT, DATA, the message (dot-stuffed here), final dot. */
export async function sendMessage(d: SmtpDialogue, from: string, to: string[], body: string, mailParams = ''): Promise<SentMessage> {
  const replies: SmtpReply[] = [];
  const step = async (line: string): Promise<SmtpReply> => {
    const r = await d.cmd(line);
    replies.push(r);
    return r;
  };
  const mail = await step(`MAIL FROM:<${from}>${mailParams}`);
  if (mail.code !== 250) return { replies, final: mail };
  let accepted = 0;
  for (const r of to) if ((await step(`RCPT TO:<${r}>`)).code === 250) accepted++;
  const data = await step('DATA');
  if (data.code !== 354 || accepted === 0) return { replies, final: data };
  const stuffed = body.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..');
  d.write(stuffed + (stuffed.endsWith('\r\n') ? '' : '\r\n') + '.\r\n');
  const final = await d.read(30_000);
  replies.push(final);
  return { replies, final };
}

/** One client session, one message to `rcpt`: the reply that ended it (RCPT's when refused there, else the end of data's). */
export async function sendOne(port: number, rcpt: string, id: string): Promise<SmtpReply> {
  const d = await dial(port);
  try {
    await d.cmd('EHLO client.test');
    const sent = await sendMessage(d, 'a@client.test', [rcpt], message(id));
    return sent.replies[1].code !== 250 ? sent.replies[1] : sent.final;
  } finally {
    d.close();
  }
}

export function message(id: string, extra = ''): string {
  return `From: a@client.test\r\nTo: b@dest.test\r\nSubject: test ${id}\r\nMessage-Id: <${id}@client.test>\r\n\r\nHello ${id}.\r\n.leading dot\r\n${extra}`;
}
