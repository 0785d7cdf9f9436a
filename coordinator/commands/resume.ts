import { pauseCommand } from './pause.js';

export default pauseCommand('resume', 'operator: announce rounds again after `pause`');
