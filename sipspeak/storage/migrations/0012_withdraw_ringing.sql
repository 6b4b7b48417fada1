-- Predictive dialling «Снимать вызов без свободного оператора после, с»: a dial still ringing
-- this long may be withdrawn (CANCEL) when no operator would be free for its person; 0 = never.
-- 15 s is the minimum ring time UK (Ofcom) and US (47 CFR 64.1200(a)(6)) rules require.
ALTER TABLE projects ADD COLUMN withdraw_after_s INTEGER NOT NULL DEFAULT 15;
