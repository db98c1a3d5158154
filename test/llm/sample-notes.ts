import type { NoteForSummary } from '../../activities/llm/types';

/** Three visits of one made-up patient, written the way clinicians write them (lists, abbreviations, prose). */
export const SAMPLE_NOTES: NoteForSummary[] = [
  {
    noteTime: '2026-01-10T09:30:00.000Z',
    subjective: 'Presents for follow-up of blood pressure and diabetes. Reports occasional headaches. Allergic to penicillin (hives).',
    objective: 'BP 148/92, HR 78, weight 92 kg. A1c 8.1 %. Glucose 182 mg/dL.',
    assessment: '1. Hypertension - not at goal\n2. Type 2 diabetes mellitus, A1c above goal',
    plan: 'Start lisinopril 10 mg daily.\nContinue metformin 500 mg twice daily.\nRecheck BMP in 2 weeks.',
  },
  {
    noteTime: '2026-02-14T14:00:00.000Z',
    subjective:
      'Headaches resolved. Mild dry cough since starting lisinopril. Meds: lisinopril 10 mg daily, metformin 500 mg BID, atorvastatin 20 mg nightly.',
    objective: 'BP 132/84, HR 72. Lungs clear. Creatinine 0.9 mg/dL, potassium 4.4.',
    assessment: 'HTN improving. Dry cough likely ACE inhibitor related.\nHyperlipidemia on statin.',
    plan: 'Switch lisinopril to losartan 50 mg daily. Continue atorvastatin. Follow up in 6 weeks.',
  },
  {
    noteTime: '2026-03-28T10:15:00.000Z',
    subjective: 'Cough gone. Feels well. Checks sugars at home, fasting 120-140.',
    objective: 'BP 126/80. Foot exam normal. A1c 7.2 %.',
    assessment: 'Problems: hypertension (controlled), T2DM (improving), hyperlipidemia\nAllergies: penicillin - hives; sulfa',
    plan: 'Continue losartan 50 mg daily, metformin 1000 mg BID, atorvastatin 20 mg.\nRepeat A1c in 3 months.\nAnnual eye exam referral.',
  },
];
