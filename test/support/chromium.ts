import { chromium, type Browser } from 'playwright-core';

/** Debian's headless Chromium, as the HTML report tests drive it (no sandbox as root, nothing fetched from the network). */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}
